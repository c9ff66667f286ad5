import math


def expected_initial_loss(classes):
    # Before it has learned anything, the model gives every class about the same probability,
    # 1/classes; the cross-entropy of the right class is then -log(1/classes) = log(classes).
    return math.log(classes)
