# Rank 1 fails at once; rank 0 would go on: torchrun stops it and reports rank 1 as the root cause.
import os
import time

rank = int(os.environ["RANK"])
print(f"hello from {rank}", flush=True)
if rank == 1:
    raise RuntimeError("boom on rank 1")
time.sleep(3)
