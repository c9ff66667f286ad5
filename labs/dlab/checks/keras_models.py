"""The checks of lab 01's exercises (01-first-keras-network): compiling a classifier for integer
labels, building a multi-layer perceptron, and counting its parameters by hand.

Keras is imported inside the checks, so that the lab chooses the backend first
(dlab.use_keras_backend); they work on TensorFlow, PyTorch and JAX alike."""
import numpy as np

# The sizes the checks build with: small, and all different, so that a size written in as a
# number (784, 128, 10) instead of the argument shows, and which argument it should have been.
N_INPUTS, N_HIDDEN, N_CLASSES = 12, 7, 5


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _relu(z):
    return np.maximum(z, 0)


def _loss_name(loss):
    """What the student passed as `loss`, in words: a name, with from_logits if it was set."""
    if isinstance(loss, str):
        return loss
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    name = config.get("name") or getattr(loss, "__name__", type(loss).__name__)
    return f"{name} (from_logits=True)" if config.get("from_logits") else name


def check_compile_classifier(compile_classifier):
    """The student's compile_classifier on a small model that ends in a softmax: Adam, a loss that
    takes integer labels and probabilities, and the accuracy among the metrics."""
    import keras

    model = keras.Sequential([keras.Input((N_INPUTS,)), keras.layers.Dense(N_CLASSES, activation="softmax")])
    compile_classifier(model)
    if not model.compiled:
        return ("the model is not compiled: call model.compile(optimizer=..., loss=..., metrics=[...]) inside "
                "the function (it compiles the model it is given; it need not return anything)")
    if type(model.optimizer).__name__ != "Adam":
        return (f"the optimizer is {type(model.optimizer).__name__}: use optimizer=\"adam\", which adapts its "
                "step size to each weight and trains these models well without tuning")
    name = _loss_name(model.loss).lower()
    if "from_logits" in name:  # TensorFlow quietly mends it (it takes the softmax's input); the others do not
        return ("from_logits=True tells the loss that the outputs are raw scores, but this model ends in a "
                "softmax: they are probabilities already; leave from_logits out (it is False by default)")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, N_INPUTS)).astype("float32")
    y = np.array([0, 1, 2, 3, 4, 0, 1, 2])  # integer labels, as the lab's are
    try:
        logs = model.evaluate(x, y, verbose=0, return_dict=True)
    except Exception as error:  # noqa: BLE001 (each backend says a wrong shape its own way)
        logs, failed = None, f"{type(error).__name__}: {str(error).splitlines()[0]}"
    if logs is not None:
        probabilities = keras.ops.convert_to_numpy(model(x)).astype("float64")
        expected = -np.log(probabilities[np.arange(len(y)), y]).mean()
        failed = None if abs(logs["loss"] - expected) < 1e-4 else f"it gives {logs['loss']:.4f} where the cross-entropy is {expected:.4f}"
    if failed:
        if "categorical" in name and "sparse" not in name:
            return ("categorical_crossentropy expects each label one-hot (a row of n_classes numbers, 1 at the "
                    "right class), but these labels are integers 0-9: use loss=\"sparse_categorical_crossentropy\"")
        if "binary" in name:
            return ("binary cross-entropy is for one yes/no output; for one of several classes with integer "
                    "labels use loss=\"sparse_categorical_crossentropy\"")
        if "squared" in name or "absolute" in name or name in ("mse", "mae"):
            return ("a squared (or absolute) error is for predicting numbers, not classes: the label 7 is not "
                    "'closer' to 8 than to 1; use loss=\"sparse_categorical_crossentropy\"")
        return (f"the loss {name!r} is not the cross-entropy of integer labels ({failed}): use "
                "loss=\"sparse_categorical_crossentropy\" (integer labels, probabilities out)")
    if "accuracy" not in logs:  # the lab reads history["val_accuracy"]: another name (acc, sparse_...) breaks it
        return ("the loss is right, but fit will not show \"accuracy\": use metrics=[\"accuracy\"], the fraction "
                "of images classified right, the number we compare models by")
    return None


def _build(build_mlp, *sizes):
    """(model, None), or (None, what went wrong) if calling build_mlp raised something."""
    try:
        return build_mlp(*sizes), None
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 (the student's code may raise anything: say what)
        hint = ""
        if "to a shape" in str(error):
            hint = ": a shape is a tuple, so (n_inputs,) with the comma, not (n_inputs)"
        return None, f"build_mlp({', '.join(map(str, sizes))}) raised {type(error).__name__}: {error}{hint}"


def check_build_mlp(build_mlp):
    """The student's build_mlp, built with small sizes: its input, its layers and their widths,
    then its outputs against softmax(relu(x W1 + b1) W2 + b2) with its own weights; where they
    part, the likeliest mistake is named."""
    import keras

    model, problem = _build(build_mlp, N_INPUTS, N_HIDDEN, N_CLASSES)
    if problem:
        return problem
    if not isinstance(model, keras.Model):
        return f"it returns {type(model).__name__}: return the model, keras.Sequential([...])"
    if not model.built or not getattr(model, "inputs", None):
        return ("the model does not know the size of its input: start the list with keras.Input((n_inputs,)), "
                "so that Keras can make the weights now (and model.summary() can count them)")
    shape = tuple(model.inputs[0].shape)[1:]
    if shape != (N_INPUTS,):
        if shape == (784,):
            return ("the input is fixed at 784 numbers: use the argument, keras.Input((n_inputs,)), "
                    f"(the check builds it with n_inputs={N_INPUTS})")
        return (f"the input is shaped {shape} where each example is a vector of n_inputs={N_INPUTS} numbers: "
                "keras.Input((n_inputs,))")
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if len(dense) < 2:
        return ("it has no hidden layer: one Dense layer straight to the output is logistic regression again; put "
                "keras.layers.Dense(n_hidden, activation=\"relu\") between the input and the output layer")
    if len(dense) > 2:
        return (f"it has {len(dense) - 1} hidden layers: the exercise asks for one, Dense(n_hidden, "
                "activation=\"relu\") (try more under 'Try next')")
    hidden, output = dense
    if output.units != N_CLASSES:
        fixed = " (a number written in instead of the argument)" if output.units == 10 else ""
        return (f"the output layer has {output.units} units{fixed} where n_classes={N_CLASSES}: one probability "
                "per class, keras.layers.Dense(n_classes, activation=\"softmax\")")
    if hidden.units != N_HIDDEN:
        return (f"the hidden layer has {hidden.units} units where n_hidden={N_HIDDEN}: "
                "keras.layers.Dense(n_hidden, activation=\"relu\")")

    if any(len(layer.get_weights()) != 2 for layer in dense):
        return "a Dense layer has no bias: keep the biases (use_bias is True unless you say otherwise)"
    x = np.random.default_rng(0).normal(size=(16, N_INPUTS)).astype("float32") * 2
    got = keras.ops.convert_to_numpy(model(x, training=False)).astype("float64")
    (w1, b1), (w2, b2) = ([w.astype("float64") for w in layer.get_weights()] for layer in dense)
    pre = x.astype("float64") @ w1 + b1

    def out(h):
        return h @ w2 + b2

    if np.allclose(got, _softmax(out(_relu(pre))), rtol=1e-4, atol=1e-5):
        return None
    no_softmax = ("the output layer has no softmax: it gives raw scores, any real numbers, while the loss "
                  "(sparse_categorical_crossentropy) expects probabilities that sum to 1; "
                  "keras.layers.Dense(n_classes, activation=\"softmax\")")
    linear = ("the hidden layer has no activation, and a stack of linear layers is still linear: "
              "W2 (W1 x + b1) + b2 = W x + b, one linear map, so the network can draw no boundary that "
              "logistic regression cannot; give it activation=\"relu\"")
    wrong = {
        linear: _softmax(out(pre)),
        no_softmax: out(_relu(pre)),
        "neither layer has an activation: the hidden layer needs activation=\"relu\" (without it the network "
        "is linear, logistic regression again) and the output activation=\"softmax\" (probabilities)": out(pre),
        "the output layer uses sigmoid: each output lies between 0 and 1, but together they do not sum to 1; "
        "softmax makes them one probability per class, activation=\"softmax\"": _sigmoid(out(_relu(pre))),
        "the output layer uses relu: its outputs are not probabilities; activation=\"softmax\"": _relu(out(_relu(pre))),
        "the hidden layer has a softmax: softmax belongs to the output (probabilities over the classes); "
        "the hidden layer takes activation=\"relu\"": _softmax(out(_softmax(pre))),
        "the hidden layer uses sigmoid: a non-linearity too, but this exercise asks for ReLU, max(0, x), "
        "activation=\"relu\"": _softmax(out(_sigmoid(pre))),
        "the hidden layer uses tanh: a non-linearity too, but this exercise asks for ReLU, max(0, x), "
        "activation=\"relu\"": _softmax(out(np.tanh(pre))),
    }
    for said, value in wrong.items():
        if np.allclose(got, value, rtol=1e-4, atol=1e-5):
            return said
    return ("its outputs differ from softmax(relu(x W1 + b1) W2 + b2): keras.Input((n_inputs,)), then "
            "Dense(n_hidden, activation=\"relu\"), then Dense(n_classes, activation=\"softmax\"), nothing else")


def check_mlp_parameter_count(mlp_parameter_count):
    """The student's count against Keras's rule: each Dense layer holds inputs x units weights and
    one bias per unit."""
    for sizes in ((N_INPUTS, N_HIDDEN, N_CLASSES), (784, 128, 10)):
        n_in, n_hidden, n_classes = sizes
        got = mlp_parameter_count(*sizes)
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            if isinstance(got, float) and got.is_integer():
                got = int(got)
            else:
                return f"it returns {got!r}: return a whole number (an int)"
        weights = n_in * n_hidden + n_hidden * n_classes
        expected = weights + n_hidden + n_classes
        if got == expected:
            continue
        call = f"for n_inputs={n_in}, n_hidden={n_hidden}, n_classes={n_classes} it gives {got:,} where Keras counts {expected:,}"
        if got == weights:
            return (f"{call}: the biases are missing; each unit also has one bias, n_hidden of them in the hidden "
                    "layer and n_classes in the output")
        if got in (n_in * n_hidden + n_hidden, n_in * n_hidden):
            return f"{call}: that is the hidden layer alone; add the output layer's, n_hidden x n_classes weights and n_classes biases"
        if got in (n_hidden * n_classes + n_classes, n_in * n_classes + n_classes):
            return f"{call}: count both Dense layers, the hidden one (n_inputs x n_hidden + n_hidden) and the output"
        if got == weights + 2:
            return f"{call}: there is one bias per unit, not one per layer: n_hidden + n_classes biases"
        return (f"{call}: each Dense layer holds (its inputs x its units) weights plus one bias per unit, "
                "for the hidden layer and the output layer")
    return None
