import torch
import torch.nn.functional as F


def evaluate(model, loader):
    model.eval()                            # dropout off: every unit counts, the same every time
    total, right, count = 0.0, 0, 0
    with torch.no_grad():                   # no graph kept: nothing here is trained
        for xb, yb in loader:
            logits = model(xb)
            total += F.cross_entropy(logits, yb, reduction="sum").item()
            right += (logits.argmax(1) == yb).sum().item()
            count += len(yb)
    return total / count, right / count
