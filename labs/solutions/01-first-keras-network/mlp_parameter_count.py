def mlp_parameter_count(n_inputs, n_hidden, n_classes):
    # Each Dense layer holds (its inputs x its units) weights, plus one bias per unit.
    hidden = n_inputs * n_hidden + n_hidden
    output = n_hidden * n_classes + n_classes
    return hidden + output
