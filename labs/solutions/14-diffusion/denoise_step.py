def denoise_step(x, predicted_noise, t, betas, alpha_bar, z):
    # Take away this step's share of the predicted noise, undo this step's shrinking...
    mean = (x - betas[t] / (1 - alpha_bar[t]).sqrt() * predicted_noise) / (1 - betas[t]).sqrt()
    # ...and, but for the last step, add fresh noise of this step's size (the process is random).
    return mean + betas[t].sqrt() * z if t > 0 else mean
