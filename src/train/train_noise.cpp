// Noise offset and pyramid noise from given draws; see train_noise.h for the references.
#include "train/train_noise.h"

#include <cmath>

#include <ATen/ATen.h>

#include "core/error.h"

namespace ls::train {

at::Tensor offset_noise(const at::Tensor& latents, const at::Tensor& noise, const at::Tensor& draw,
                        const at::Tensor& offset, double adaptive_noise_scale) {
  LS_CHECK(noise.dim() == 4 && draw.dim() == 4 && draw.size(0) == noise.size(0) && draw.size(1) == noise.size(1),
           "noise offset: noise ", noise.sizes(), " must be [B, C, H, W] and the draw ", draw.sizes(), " [B, C, 1, 1]");
  const auto d = draw.to(noise.device());
  const auto strength = offset.to(noise.device(), at::kFloat);
  if (adaptive_noise_scale == 0) return noise + strength * d;
  LS_CHECK(latents.sizes() == noise.sizes(), "noise offset: latents ", latents.sizes(), " and noise ", noise.sizes(),
           " must have the same shape");
  const auto latent_mean = at::abs(latents.mean({2, 3}, /*keepdim=*/true));  // [B, C, 1, 1]
  // kohya: torch.clamp(offset, 0.0, None), for a negative adaptive scale.
  const auto per_channel = at::clamp_min(strength + adaptive_noise_scale * latent_mean, 0.0);
  return noise + per_channel * d;
}

at::Tensor apply_noise_offset(const at::Tensor& latents, const at::Tensor& noise, double noise_offset,
                              double adaptive_noise_scale, at::Generator generator) {
  LS_CHECK(latents.dim() == 4 && latents.sizes() == noise.sizes(), "noise offset: latents ", latents.sizes(),
           " and noise ", noise.sizes(), " must both be [B, C, H, W]");
  if (noise_offset == 0) return noise;
  LS_CHECK(generator.defined(), "noise offset: a generator is required");
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(generator.device());
  const auto draw = at::randn({latents.size(0), latents.size(1), 1, 1}, generator, opts);  // [B, C, 1, 1]
  // A Python float offset: the scalar multiplies in the noise's dtype.
  if (adaptive_noise_scale == 0) return noise + noise_offset * draw.to(noise.device());
  return offset_noise(latents, noise, draw, at::scalar_tensor(noise_offset, at::kDouble), adaptive_noise_scale);
}

std::vector<std::pair<int64_t, int64_t>> pyramid_sizes(int64_t h, int64_t w, const std::vector<double>& u) {
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (size_t i = 0; i < u.size(); ++i) {
    const double r = u[i] * 2 + 2;  // kohya: random.random() * 2 + 2, "rather than always going 2x"
    const double f = std::pow(r, static_cast<double>(i));
    const int64_t hn = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(h) / f));
    const int64_t wn = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(w) / f));
    sizes.emplace_back(hn, wn);
    if (hn == 1 || wn == 1) break;  // kohya: the lowest resolution is 1x1
  }
  return sizes;
}

at::Tensor pyramid_noise(const at::Tensor& noise, const std::vector<PyramidOctave>& octaves, double discount) {
  LS_CHECK(noise.dim() == 4, "pyramid noise: need noise [B, C, H, W], got ", noise.sizes());
  auto out = noise.clone();
  for (size_t i = 0; i < octaves.size(); ++i) {
    const at::Tensor& d = octaves[i].draw;
    LS_CHECK(d.dim() == 4 && d.size(0) == noise.size(0) && d.size(1) == noise.size(1),
             "pyramid noise: octave ", i, " is ", d.sizes(), ", not [B, C, h, w] of the noise ", noise.sizes());
    const auto up = at::upsample_bilinear2d(d.to(noise.device(), noise.scalar_type()), {noise.size(2), noise.size(3)},
                                            /*align_corners=*/false);
    out += up * std::pow(discount, static_cast<double>(i));  // Python's float ** int
  }
  return out / out.std();
}

}  // namespace ls::train
