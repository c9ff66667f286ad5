def compile_classifier(model):
    # Adam: a step size of its own for each weight, which trains well without tuning.
    # The labels are integers 0-9 (not one-hot rows) and the model ends in a softmax (probabilities):
    # sparse categorical cross-entropy, -log(the probability given to the right class).
    # The accuracy, the fraction of right answers, is shown beside the loss at every epoch.
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
