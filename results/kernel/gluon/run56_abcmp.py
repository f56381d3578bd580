import torch
a, b = torch.load("/tmp/ab_old.pt"), torch.load("/tmp/ab_new.pt")
for k in a:
    print(f"CMP {k}: new vs old rel diff {((a[k] - b[k]).norm() / a[k].norm()).item():.2e}")
