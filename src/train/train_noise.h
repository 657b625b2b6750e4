// The noise a training step adds to the latents, as kohya's train_util.get_noise_noisy_latents_and_timesteps
// makes it: Gaussian noise, noise offset (kohya custom_train_functions.apply_noise_offset, with
// noise_offset_random_strength and adaptive_noise_scale), multi-resolution "pyramid" noise
// (custom_train_functions.pyramid_noise_like, multires_noise_iterations / multires_noise_discount)
// and input perturbation noise (ip_noise_gamma, arXiv 2301.11706: extra noise in the UNet's input
// only, not in the target). Every random number is drawn by train/step_split for the whole step;
// the functions here only combine draws, so a test can feed them the reference's own draws.
#pragma once

#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace ls::train {

/// kohya apply_noise_offset: noise + offset * randn(B, C, 1, 1), the randn drawn (float32) from
/// `generator` on its device. With adaptive_noise_scale != 0 the offset is per (b, c):
/// max(0, noise_offset + adaptive_noise_scale * |mean_{H,W}(latents)|). noise_offset == 0 returns
/// `noise` untouched and draws nothing (kohya skips the call then). latents, noise [B, C, H, W].
at::Tensor apply_noise_offset(const at::Tensor& latents, const at::Tensor& noise, double noise_offset,
                              double adaptive_noise_scale, at::Generator generator);

/// The same with the draw given: draw [B, C, 1, 1], offset a number or a 0-d / [1] tensor (kohya's
/// random strength rand(1) * noise_offset). latents is read only when adaptive_noise_scale != 0.
at::Tensor offset_noise(const at::Tensor& latents, const at::Tensor& noise, const at::Tensor& draw,
                        const at::Tensor& offset, double adaptive_noise_scale);

/// One octave of kohya's pyramid noise: randn [B, C, hn, wn] times discount^i, drawn at
/// hn = max(1, int(H / r^i)), wn = max(1, int(W / r^i)) with r = 2 + 2 u, u uniform in [0, 1).
struct PyramidOctave {
  double r = 2;
  at::Tensor draw;  // [B, C, hn, wn]
};

/// The octaves' sizes for a [H, W] latent: kohya stops after the first octave that reaches 1 in
/// either dimension. `u` holds one uniform per iteration (only the ones used are read).
std::vector<std::pair<int64_t, int64_t>> pyramid_sizes(int64_t h, int64_t w, const std::vector<double>& u);

/// kohya pyramid_noise_like: noise + sum_i bilinear_upsample(octave_i) * discount^i (align_corners
/// false, as torch.nn.Upsample), divided by its standard deviation over every element (unbiased):
/// so the statistic couples the whole batch the octaves were drawn for.
at::Tensor pyramid_noise(const at::Tensor& noise, const std::vector<PyramidOctave>& octaves, double discount);

}  // namespace ls::train
