export PYTHONUNBUFFERED=1
mkdir -p data/shakespeare && cp devcarry/sh/*.bin data/shakespeare/
rm -rf /tmp/old && mkdir -p /tmp/old && cp -r *.py configs data /tmp/old/ && cp devcarry/old/*.py /tmp/old/
for t in old new; do
  if [ $t = old ]; then P=devcarry/old:.; else P=.; fi
  TAG=$t PYTHONPATH=$P timeout 60 python devcarry/err.py 2>&1 | grep -E "ERR|Error" | tee -a $OUT/run57_err.log
done
timeout 330 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants softmax_cg sigmoid_cg > $OUT/run57_train.log 2>&1
tail -8 $OUT/run57_train.log
(mkdir -p $OUT/old; cd /tmp/old && OUT=$OUT/old timeout 170 python bench.py --mode=train --train_shapes 16,1024 2,8192 --iters=30 --train_variants sigmoid_cg > $OUT/run57_train_old.log 2>&1)
tail -5 $OUT/run57_train_old.log
