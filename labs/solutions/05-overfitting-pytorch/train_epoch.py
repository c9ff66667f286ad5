import torch.nn.functional as F


def train_epoch(model, optimizer, loader, augment=None):
    model.train()                           # dropout on (and batch norm's batch statistics)
    total, count = 0.0, 0
    for xb, yb in loader:                   # one step per batch; the epoch ends when every batch is seen
        if augment is not None:
            xb = augment(xb)                # a new random copy of each image, every epoch
        loss = F.cross_entropy(model(xb), yb)   # on the logits
        optimizer.zero_grad()               # else this batch's gradients add to the last one's
        loss.backward()
        optimizer.step()
        total += loss.item() * len(yb)      # a number, not a tensor; weighted, as the last batch may be smaller
        count += len(yb)
    return total / count
