# The list-scheduling model behind run 64's prediction: programs start in grid order on SLOTS slots
# (2-4 per SM x 132 SMs), each taking time c0 + its key blocks; per-head order against L2 sections (FA3's LPT order).
# python3 results/kernel/gluon/run64_sched_model.py
import heapq
def sim(durs, slots):
    h=[0.0]*slots; heapq.heapify(h); end=0
    for d in durs:
        t=heapq.heappop(h); t+=d; end=max(end,t); heapq.heappush(h,t)
    return end
def run(BH, nblk, slots, c0, rev_within=True):
    blk=[c0+i+1 for i in range(nblk)]  # causal work, block i sees i+1 key blocks
    longest=sorted(blk, reverse=True)
    per_head=[d for _ in range(BH) for d in longest]
    glob=[d for d in longest for _ in range(BH)]
    ideal=sum(blk)*BH/slots
    a=sim(per_head,slots); g=sim(glob,slots)
    return ideal, a, g
for name,B,H,T,bm,slots in [("fwd 16,12,1024,64",16,12,1024,64,264),("fwd 8,16,2048,128",8,16,2048,64,264),
    ("fwd 4,32,4096,64",4,32,4096,64,264),("fwd 2,16,8192,128",2,16,8192,64,264),("fwd 2,12,8192,64",2,12,8192,64,264),
    ("dq128 2,16,8192,128",2,16,8192,128,132),("dq 2,12,8192,64 bm128",2,12,8192,128,264)]:
    for c0 in (0.5,2):
        i,a,g=run(B*H,T//bm,slots,c0)
        print(f"{name:24s} c0={c0}: per-head {a/i:.3f}  global-LPT {g/i:.3f}  gain {a/g:.3f}")
print("sections")
def sect_order(HB, nblk, S, c0):
    out=[]
    for first in range(0, HB, S):
        w=min(S, HB-first)
        for i in range(nblk):
            out += [c0 + nblk - i]*w
    return out
for name,B,H,T,D,bm,slots in [("fwd 16,12,1024,64",16,12,1024,64,64,528),("fwd 8,16,2048,128",8,16,2048,128,64,264),
    ("fwd 4,32,4096,64",4,32,4096,64,64,528),("fwd 2,16,8192,128",2,16,8192,128,64,264),("fwd 2,12,8192,64",2,12,8192,64,64,528),
    ("dq 2,16,8192,128 bm128",2,16,8192,128,128,132),("dq 2,12,8192,64 bm128",2,12,8192,64,128,264)]:
    HB=B*H; nblk=T//bm; c0=1
    blk=[c0+i+1 for i in range(nblk)]; ideal=sum(blk)*HB/slots
    per=[d for _ in range(HB) for d in sorted(blk,reverse=True)]
    S=max(1, (32<<20)//(2*T*D*2))
    print(f"{name:24s} S={S:4d} per-head {sim(per,slots)/ideal:.3f} sections {sim(sect_order(HB,nblk,S,c0),slots)/ideal:.3f} global {sim(sect_order(HB,nblk,HB,c0),slots)/ideal:.3f}")
