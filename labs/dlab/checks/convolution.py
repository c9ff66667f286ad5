"""The check of lab 04's exercise (04-convolutions-and-cnn): a 2-D convolution as deep learning
means it (a cross-correlation, 'valid', stride 1), written in NumPy."""


def check_conv2d(conv2d):
    """The student's conv2d against scipy.signal.correlate2d(image, kernel, mode="valid"), on images
    and kernels that are not square and not symmetric; where they part, the likeliest mistake is
    named."""
    import numpy as np
    from scipy.signal import convolve2d, correlate2d

    rng = np.random.default_rng(0)
    for (height, width), (kh, kw) in (((6, 9), (3, 3)), ((8, 5), (2, 3))):
        image = rng.normal(size=(height, width))
        kernel = rng.normal(size=(kh, kw))
        expected = correlate2d(image, kernel, mode="valid")
        try:
            got = conv2d(image, kernel)
        except NotImplementedError:
            raise
        except (IndexError, ValueError) as error:  # a slice or a shape that only fits a square kernel or image
            return (f"it fails on an image of {height}×{width} and a kernel of {kh}×{kw} ({type(error).__name__}: "
                    f"{error}): rows go with the kernel's height ({kh}), columns with its width ({kw})")
        got = np.asarray(got)
        if got.shape != expected.shape:
            if got.shape == expected.T.shape:
                return (f"its output is {got.shape[0]}×{got.shape[1]}, rows and columns swapped: the output's "
                        f"first axis is the image's rows ({height} - {kh} + 1 = {expected.shape[0]}), its second "
                        f"the columns ({width} - {kw} + 1 = {expected.shape[1]})")
            return (f"its output is {'×'.join(map(str, got.shape))} for an image of {height}×{width} and a kernel of "
                    f"{kh}×{kw}: 'valid' keeps only the positions where the whole kernel lies inside the image, "
                    f"({height} - {kh} + 1)×({width} - {kw} + 1) = {expected.shape[0]}×{expected.shape[1]}")
        if np.allclose(got, expected, atol=1e-5):  # float32 arithmetic is right too
            continue
        wrong = {
            "the kernel is flipped: that is true convolution (scipy's convolve2d); deep learning's "
            "'convolution' slides the kernel as it is (a cross-correlation): multiply image[i + u, j + v] "
            "by kernel[u, v], not by the flipped kernel": convolve2d(image, kernel, mode="valid"),
            "the kernel is flipped upside down (its rows reversed): multiply image[i + u, j + v] by "
            "kernel[u, v], with u counting the same way in both": correlate2d(image, kernel[::-1], mode="valid"),
            "the kernel is flipped left to right (its columns reversed): multiply image[i + u, j + v] by "
            "kernel[u, v], with v counting the same way in both": correlate2d(image, kernel[:, ::-1], mode="valid"),
        }
        if kh == kw:
            wrong["the kernel's rows and columns are swapped (kernel[v, u] where kernel[u, v] belongs): u, the "
                  "row offset, goes with the image's rows (i + u), v with its columns (j + v)"] = (
                correlate2d(image, kernel.T, mode="valid"))
        for said, value in wrong.items():
            if np.allclose(got, value, atol=1e-5):
                return said
        return ("it differs from scipy.signal.correlate2d(image, kernel, mode='valid'): out[i, j] must be the sum "
                "over the kernel of image[i + u, j + v] * kernel[u, v]")
    return None
