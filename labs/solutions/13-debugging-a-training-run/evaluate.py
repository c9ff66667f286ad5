import torch


def evaluate(model, X, Y):
    model.eval()                        # dropout off: every unit counts, the same every time
    with torch.no_grad():               # no graph kept: nothing here is trained
        return (model(X).argmax(1) == Y).float().mean().item()
