import torch
import torch.nn.functional as F


def train_step(model, optimizer, xb, yb, max_norm):
    model.train()                       # dropout on (and batch norm's batch statistics)
    loss = F.cross_entropy(model(xb), yb)   # on the logits: cross_entropy applies log-softmax itself
    optimizer.zero_grad()               # else this step's gradients add to the last step's
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)   # one bad batch cannot throw the weights far
    optimizer.step()
    return loss.item()
