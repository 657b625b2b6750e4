// CFG over the eps-parameterised SDXL UNet; see cfg_denoiser.h for the references.
#include "sample/cfg_denoiser.h"

#include <torch/torch.h>

#include "core/error.h"
#include "sample/sigmas.h"

namespace ls::sample {

namespace {

at::Tensor expand_batch(const at::Tensor& t, int64_t batch) {
  if (t.size(0) == batch) return t;
  LS_CHECK(t.size(0) == 1, "cfg_denoiser: conditioning batch ", t.size(0), " does not match latent batch ", batch);
  std::vector<int64_t> sizes = t.sizes().vec();
  sizes[0] = batch;
  return t.expand(sizes);
}

}  // namespace

at::Tensor eps_denoise(models::SdxlUnetImpl& unet, const models::NoiseSchedule& schedule, const at::Tensor& x,
                       const at::Tensor& sigma, const at::Tensor& context, const at::Tensor& y) {
  const auto s = sigma.to(x.options()).reshape({-1, 1, 1, 1});  // [B,1,1,1]
  const auto c_in = 1.0 / (s * s + 1.0).sqrt();
  const auto t = sigma_to_t(schedule, sigma);  // [B] fractional timesteps
  const auto eps = unet.forward(x * c_in, t, context, y);  // [B,4,h,w]
  return x - eps * s;
}

at::Tensor v_to_denoised(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& v) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = -1;
  const auto s = sigma.to(x.options()).reshape(shape);  // [B,1,...]
  const auto s2 = s * s + 1.0;
  // k-diffusion get_scalings: c_skip = 1 / (s^2 + 1), c_out = -s / sqrt(s^2 + 1).
  return x * (1.0 / s2) + v * (-s / s2.sqrt());
}

at::Tensor v_denoise(models::SdxlUnetImpl& unet, const models::NoiseSchedule& schedule, const at::Tensor& x,
                     const at::Tensor& sigma, const at::Tensor& context, const at::Tensor& y) {
  const auto s = sigma.to(x.options()).reshape({-1, 1, 1, 1});  // [B,1,1,1]
  const auto c_in = 1.0 / (s * s + 1.0).sqrt();
  const auto v = unet.forward(x * c_in, sigma_to_t(schedule, sigma), context, y);  // [B,4,h,w]
  return v_to_denoised(x, sigma, v);
}

DenoiseFn cfg_denoiser(models::SdxlUnet unet, const models::NoiseSchedule& schedule, UnetConditioning cond,
                       UnetConditioning uncond, double scale, bool v_prediction) {
  LS_CHECK(!scale || scale == 1.0 || cond.context.size(1) == uncond.context.size(1),
           "cfg_denoiser: prompt and negative prompt encode to different lengths (", cond.context.size(1), " vs ",
           uncond.context.size(1), "); pad them to the same number of chunks");
  const auto denoise = v_prediction ? &v_denoise : &eps_denoise;
  return [unet, schedule, cond, uncond, scale, denoise](const at::Tensor& x, const at::Tensor& sigma) mutable -> at::Tensor {
    torch::NoGradGuard no_grad;
    const int64_t b = x.size(0);
    if (scale == 1.0) {
      return denoise(*unet, schedule, x, sigma, expand_batch(cond.context, b), expand_batch(cond.y, b));
    }
    // [uncond..., cond...] in one call, as A1111 batches them.
    const auto x2 = torch::cat({x, x});
    const auto s2 = torch::cat({sigma, sigma});
    const auto ctx = torch::cat({expand_batch(uncond.context, b), expand_batch(cond.context, b)});
    const auto y = torch::cat({expand_batch(uncond.y, b), expand_batch(cond.y, b)});
    const auto out = denoise(*unet, schedule, x2, s2, ctx, y).chunk(2);
    return out[0] + (out[1] - out[0]) * scale;
  };
}

}  // namespace ls::sample
