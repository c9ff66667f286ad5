"""Plots a person would rather look at than read: a loss curve that redraws while a model
trains, and a grid of images saved as a PNG."""

import math

import matplotlib.pyplot as plt
import numpy as np


class LiveLoss:
    """Redraws one figure of metric curves after every epoch.

    In a PyTorch or JAX loop call `update(epoch, loss=..., val_loss=...)`; with Keras pass
    `live.keras_callback()` to `fit(callbacks=[...])`.
    """

    def __init__(self, title="training", path=None):
        self.title, self.path = title, path
        self.history = {}
        self.handle = None

    def update(self, epoch, **metrics):
        from IPython.display import display

        for name, value in metrics.items():
            self.history.setdefault(name, []).append((epoch, float(value)))
        fig, axes = self._draw()
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        if self.path:
            fig.savefig(self.path, dpi=80)
        plt.close(fig)

    def _draw(self):
        # Losses on one axis, everything else (accuracies) on a second.
        groups = {"loss": [], "other": []}
        for name in self.history:
            groups["loss" if "loss" in name else "other"].append(name)
        panels = [g for g in groups.values() if g]
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.2), squeeze=False)
        for ax, names in zip(axes[0], panels):
            for name in names:
                epochs, values = zip(*self.history[name])
                ax.plot(epochs, values, marker="o", label=name)
            ax.set_xlabel("epoch")
            ax.legend()
            ax.grid(alpha=0.3)
        fig.suptitle(self.title)
        fig.tight_layout()
        return fig, axes

    def keras_callback(self):
        import keras

        live = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                live.update(epoch + 1, **(logs or {}))

        return _Callback()


def image_grid(images, path=None, ncols=8, titles=None, title=None, cmap="gray"):
    """Show images (N,H,W) or (N,H,W,C) in a grid; save it as a PNG when a path is given."""
    images = np.asarray(images)
    n = len(images)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 1.2, nrows * 1.3), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].squeeze(), cmap=cmap if images[i].squeeze().ndim == 2 else None)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=80)
    plt.show()
    return path
