import numpy as np


def conv2d(image, kernel):
    kh, kw = kernel.shape
    # 'valid': only the positions where the whole kernel lies inside the image.
    out_h, out_w = image.shape[0] - kh + 1, image.shape[1] - kw + 1
    out = np.zeros((out_h, out_w), dtype=np.result_type(image, kernel))
    # One pass per kernel weight (9 for a 3x3 kernel), not per pixel: kernel[u, v] multiplies the
    # pixel u rows down and v columns right of every window's top-left corner, all windows at once.
    for u in range(kh):
        for v in range(kw):
            out += kernel[u, v] * image[u:u + out_h, v:v + out_w]
    return out
