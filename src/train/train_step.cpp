#include "train/train_step.h"

#include <torch/torch.h>

namespace ls::train {

LossParts step_loss(models::SdxlUnet& unet, const models::NoiseSchedule& schedule, const StepInputs& in,
                    c10::ScalarType base_dtype, const LossOptions& loss) {
  // kohya: add_noise(latents, noise + strength * randn_like(latents), t), the target keeps `noise`.
  const torch::Tensor input_noise = in.ip_noise.defined() ? in.noise + in.ip_noise : in.noise;
  const torch::Tensor noisy = schedule.add_noise(in.latents, input_noise, in.timesteps);
  const torch::Tensor pred = unet->forward(noisy.to(base_dtype), in.timesteps, in.context.to(base_dtype),
                                           in.y.to(base_dtype));
  const torch::Tensor target =
      loss.v_prediction ? schedule.velocity(in.latents, in.noise, in.timesteps) : in.noise;
  return diffusion_loss(pred.to(torch::kFloat32), target, in.loss_weights, in.timesteps, schedule, loss, in.mask);
}

at::Tensor grad_norm(const std::vector<at::Tensor>& params) {
  std::vector<torch::Tensor> norms;
  for (const torch::Tensor& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm(2));
  if (norms.empty()) return torch::zeros({});
  return norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
}

at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  const torch::Tensor total = grad_norm(params);
  const torch::Tensor coef = torch::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
  for (const torch::Tensor& p : params)
    if (p.grad().defined()) p.grad().mul_(coef);
  return total;
}

}  // namespace ls::train
