import math, os, sys, torch, triton
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "devcarry"))
import flashsigmoid as fs
from run36_gl import gl_forward
torch.manual_seed(0)
def mk(B,H,T,D,bthd):
    g = torch.Generator().manual_seed(2176)
    t = [torch.randn(B,H,T,D, generator=g).to("cuda", torch.bfloat16) for _ in range(3)]
    if bthd: t = [x.transpose(1,2).contiguous().transpose(1,2) for x in t]
    return t
for (B,H,T,bthd,alibi,bias) in [(2,8,2048,True,False,-3.0),(2,8,2048,False,False,-3.0),(2,8,2048,True,True,-3.0),(2,8,1000,True,False,-3.0),(2,8,2048,True,False,-math.log(2048)),(8,16,2048,True,False,-math.log(2048))]:
    q,k,v = mk(B,H,T,128,bthd)
    sl = torch.rand(H, device="cuda")*0.3 if alibi else None
    res = []
    for rep in range(10):
        o = fs.sigmoid_attention(q,k,v,causal=True,bias=bias,alibi_slopes=sl)
        nan = torch.isnan(o)
        res.append(int(nan.sum()))
    fs.USE_GLUON=False
    o2 = fs.sigmoid_attention(q,k,v,causal=True,bias=bias,alibi_slopes=sl)
    fs.USE_GLUON=True
    where = torch.nonzero(torch.isnan(o).any(-1))[:5].tolist()
    extra = ""
    if False:
        oe = torch.empty_like(o); 
        # experimental kernel uses bias -0.5 ln T
        gl_forward(q,k,v,oe,(64,64,2,4))()
        extra = f" exp-kernel nans {int(torch.isnan(oe).sum())}"
    print(f"B{B} H{H} T{T} bthd={bthd} alibi={alibi} bias={bias:.2f}: NaNs per run {res}, triton nans {int(torch.isnan(o2).sum())}, maxdiff {(o.float()-o2.float()).nan_to_num(1e9).abs().max().item():.3g} first nan (b,h,t) {where}{extra}", flush=True)
