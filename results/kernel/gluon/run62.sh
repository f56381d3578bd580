export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
for t in old qkonly; do
  rm -rf /tmp/$t && mkdir -p /tmp/$t && cp -r *.py configs data /tmp/$t/ && cp devcarry/$t/*.py /tmp/$t/
  (mkdir -p $OUT/$t; cd /tmp/$t && OUT=$OUT/$t timeout 170 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants sigmoid_cg > $OUT/run62_train_$t.log 2>&1)
  tail -n 4 $OUT/run62_train_$t.log
done
timeout 150 python -m pytest -q tests/test_qknorm.py tests/test_compile.py 2>&1 | tail -n 3 | tee $OUT/run62_tests.log
timeout 100 python -m pytest -q tests/test_flashsigmoid.py -k gluon 2>&1 | tail -n 3 | tee -a $OUT/run62_tests.log
