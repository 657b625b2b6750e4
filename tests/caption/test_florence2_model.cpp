// Florence-2 against transformers 5.23's native port (tests/fixtures/florence2/, made by
// scripts/make-florence2-fixtures): a tiny random model of the real structure in both file
// layouts (the native model.safetensors and Microsoft's fp16 pytorch_model.bin) gives the
// reference's image features, encoder states and teacher-forced logits, the same greedy and
// beam-3 ids and texts; the processor's pixels; and the captioning run's files.
#include <algorithm>
#include <fstream>
#include <functional>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "caption/caption_history.h"
#include "caption/caption_run.h"
#include "caption/caption_template.h"
#include "caption/florence2_caption.h"
#include "caption/florence2_processor.h"
#include "caption/florence2_weights.h"
#include "caption/pillow_resize.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "data/synthetic.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "nn/layers.h"
#include "support/support.h"

namespace florence2_model_test {

namespace fs = std::filesystem;
using namespace ls::caption;

fs::path fixture(const std::string& name) {
  return fs::path(ls::test::kSourceDir) / "tests/fixtures/florence2" / name;
}

nlohmann::json read_json(const fs::path& path) { return nlohmann::json::parse(ls::core::read_file(path)); }

// fn throws an error whose text holds `part`.
void expect_error(const std::function<void()>& fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one with: " << part;
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

double worst_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }
double largest(const at::Tensor& a) { return a.abs().max().item<double>(); }

class Florence2Forward : public ::testing::TestWithParam<std::string> {};

// fp32 through 4 DaViT stages (5 blocks), 2+2 BART layers of width 32, on weights of unit scale:
// float32 rounding (~1e-7 relative per op, re-ordered sums in matmul / SDPA / convolutions)
// stays orders of magnitude below the issue's bound, 1e-4 of the largest magnitude. The
// Microsoft file is fp16: the fixture's weights are fp16-representable, so both layouts are the
// same model.
TEST_P(Florence2Forward, EqualsTransformers) {
  auto model = load_florence2(fixture(GetParam()), torch::kCPU, torch::kFloat);
  ls::io::SafetensorsReader golden(fixture("tiny-golden.safetensors"));
  auto pixels = golden.load("pixel_values");
  auto ids = golden.load("input_ids");
  auto decoder_ids = golden.load("decoder_input_ids");
  torch::InferenceMode inference;
  auto features = model.net->image_features(pixels);
  auto expected_features = golden.load("image_features");
  ASSERT_EQ(features.sizes(), expected_features.sizes());
  EXPECT_LE(worst_diff(features, expected_features), 1e-4 * largest(expected_features));
  auto states = model.net->encode(pixels, ids);
  auto expected_states = golden.load("encoder_hidden_states");
  ASSERT_EQ(states.sizes(), expected_states.sizes());
  EXPECT_LE(worst_diff(states, expected_states), 1e-4 * largest(expected_states));
  auto logits = model.net->logits(states, decoder_ids);
  // The native vocabulary has one more id (<image>) than Microsoft's.
  auto expected_logits = golden.load("logits").narrow(2, 0, logits.size(2));
  ASSERT_EQ(logits.size(2), model.config.text.vocab_size);
  ASSERT_EQ(logits.sizes(), expected_logits.sizes());
  EXPECT_LE(worst_diff(logits, expected_logits), 1e-4 * largest(expected_logits));
}

INSTANTIATE_TEST_SUITE_P(BothLayouts, Florence2Forward, ::testing::Values("tiny-transformers", "tiny-microsoft"));

class Florence2Generation : public ::testing::TestWithParam<std::string> {};

// Identical ids, not close ones: the fixture's weights make every choice win by at least
// tiny-generate.json's min_gap (> 1e-3 in logits / log-probs), far above float32 noise.
TEST_P(Florence2Generation, IdsAndTextsEqualTransformers) {
  auto model = load_florence2(fixture(GetParam()), torch::kCPU, torch::kFloat);
  ls::io::SafetensorsReader golden(fixture("tiny-golden.safetensors"));
  auto pixels = golden.load("pixel_values");
  const auto reference = read_json(fixture("tiny-generate.json"));
  ASSERT_GT(reference["min_gap"].get<double>(), 1e-3);
  torch::InferenceMode inference;
  // The prompt's ids from the tokenizer equal the processor's.
  auto ids = florence2_prompt_ids(model.tokenizer, reference["tasks"][0].get<std::string>(), pixels.size(0));
  auto expected_ids = reference["input_ids"].get<std::vector<std::vector<int64_t>>>();
  for (int64_t b = 0; b < ids.size(0); ++b) {
    std::vector<int64_t> row(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + ids.size(1));
    EXPECT_EQ(row, expected_ids[b]);
  }
  auto states = model.net->encode(pixels, ids);
  for (const auto& c : reference["cases"]) {
    auto options = Florence2GenerateOptions::from(model.config.text);
    options.num_beams = c["num_beams"].get<int64_t>();
    options.max_new_tokens = c["max_new_tokens"].get<int64_t>();
    const std::string what = GetParam() + " beams " + std::to_string(options.num_beams) + " max_new_tokens " +
                             std::to_string(options.max_new_tokens);
    auto sequences = florence2_generate(*model.net->language_model, states, options);
    const auto expected = c["padded_sequences"].get<std::vector<std::vector<int64_t>>>();
    ASSERT_EQ(sequences.size(0), static_cast<int64_t>(expected.size())) << what;
    for (int64_t b = 0; b < sequences.size(0); ++b) {
      std::vector<int64_t> row(sequences[b].data_ptr<int64_t>(),
                               sequences[b].data_ptr<int64_t>() + sequences.size(1));
      EXPECT_EQ(row, expected[b]) << what << " row " << b;
      const auto& r = c["rows"][b];
      const std::string decoded = model.tokenizer.decode(r["ids"].get<std::vector<int64_t>>(), false);
      EXPECT_EQ(decoded, r["decoded"].get<std::string>()) << what << " row " << b;
      EXPECT_EQ(florence2_clean_text(decoded), r["caption"].get<std::string>()) << what << " row " << b;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BothLayouts, Florence2Generation, ::testing::Values("tiny-transformers", "tiny-microsoft"));

TEST(Florence2Files, ConfigsOfBothLayoutsDescribeTheSameTinyModel) {
  auto native = read_florence2_config((fixture("tiny-transformers") / "config.json").string());
  auto microsoft = read_florence2_config((fixture("tiny-microsoft") / "config.json").string());
  EXPECT_EQ(native.layout, Florence2Layout::kTransformers);
  EXPECT_EQ(microsoft.layout, Florence2Layout::kMicrosoft);
  EXPECT_EQ(native.vision.embed_dim, microsoft.vision.embed_dim);
  EXPECT_EQ(native.vision.depths, microsoft.vision.depths);
  EXPECT_EQ(native.vision.num_groups, microsoft.vision.num_groups);
  EXPECT_EQ(native.text.d_model, microsoft.text.d_model);
  EXPECT_EQ(native.text.vocab_size, microsoft.text.vocab_size + 1);  // <image>
  EXPECT_EQ(native.image_token_id, microsoft.text.vocab_size);
}

TEST(Florence2Files, MissingWeightsAndBrokenFilesAreOneLineErrors) {
  ls::test::TempDir tmp;
  fs::copy(fixture("tiny-microsoft"), tmp.path() / "m");
  fs::remove(tmp.path() / "m" / "pytorch_model.bin");
  expect_error([&] { load_florence2(tmp.path() / "m", torch::kCPU, torch::kFloat); },
                         "has neither pytorch_model.bin nor model.safetensors");
  // A truncated pickle archive is refused by the reader, naming the file.
  auto bytes = ls::core::read_file(fixture("tiny-microsoft") / "pytorch_model.bin");
  ls::core::write_file_atomic(tmp.path() / "m" / "pytorch_model.bin", bytes.substr(0, bytes.size() / 2));
  expect_error([&] { load_florence2(tmp.path() / "m", torch::kCPU, torch::kFloat); }, "pytorch_model.bin");
  // A config of another size: every mismatch in one line.
  fs::copy(fixture("tiny-microsoft") / "pytorch_model.bin", tmp.path() / "m" / "pytorch_model.bin",
           fs::copy_options::overwrite_existing);
  auto config = read_json(fixture("tiny-microsoft") / "config.json");
  config["text_config"]["d_model"] = 48;
  config["vision_config"]["projection_dim"] = 48;
  ls::core::write_file_atomic(tmp.path() / "m" / "config.json", config.dump());
  expect_error([&] { load_florence2(tmp.path() / "m", torch::kCPU, torch::kFloat); }, "wrong shape");
}

class Florence2RealKeys : public ::testing::TestWithParam<std::string> {};

// Every tensor of the real base / large file, in both layouts, has a place of its shape in the
// module built from the real config, and every module tensor is filled by one.
TEST_P(Florence2RealKeys, EqualTheReferenceFiles) {
  const std::string name = GetParam();
  auto config = read_florence2_config((fixture("configs") / (name + ".json")).string());
  Florence2Net net{nullptr};
  {
    ls::nn::SkipInitGuard skip;
    net = Florence2Net(config);
  }
  std::map<std::string, std::vector<int64_t>> slots;
  for (const auto& p : net->named_parameters(true)) slots[p.key()] = p.value().sizes().vec();
  for (const auto& b : net->named_buffers(true)) slots[b.key()] = b.value().sizes().vec();
  std::set<std::string> filled;
  // keys/<size>-<layout>.txt: the reference file's tensors (transformers' model on the meta
  // device and the conversion's key map, see the fixtures' README).
  const auto keys = ls::test::read_key_shapes(fixture("keys") / (name + ".txt"));
  ASSERT_GT(keys.size(), 600u);
  for (const auto& [key, shape] : keys) {
    auto target = florence2_key_target(key, config.layout);
    if (target.module_key.empty()) continue;
    auto slot = slots.find(target.module_key);
    ASSERT_NE(slot, slots.end()) << name << ": " << key << " -> " << target.module_key << " has no place";
    auto want = slot->second;
    if (target.transposed) std::swap(want[0], want[1]);
    EXPECT_EQ(shape, want) << name << ": " << key;
    filled.insert(target.module_key);
  }
  for (const auto& [key, shape] : slots) {
    // Transformers' port has no final_logits_bias; the loader leaves it zero.
    if (key == "language_model.final_logits_bias" && config.layout == Florence2Layout::kTransformers) continue;
    EXPECT_TRUE(filled.count(key)) << name << ": the module's " << key << " is in no file tensor";
  }
}

INSTANTIATE_TEST_SUITE_P(BaseAndLarge, Florence2RealKeys,
                         ::testing::Values("base-microsoft", "base-transformers", "large-microsoft",
                                           "large-transformers"));

// Microsoft's layout maps onto the module by rule; the loader ignores the DaViT head Microsoft
// deletes and reads one copy of the tied token table.
TEST(Florence2Files, MicrosoftKeyTargets) {
  const auto m = Florence2Layout::kMicrosoft;
  EXPECT_EQ(florence2_key_target("vision_tower.convs.0.proj.weight", m).module_key, "vision_tower.convs.0.conv.weight");
  EXPECT_EQ(florence2_key_target("vision_tower.blocks.2.3.spatial_block.conv1.fn.dw.weight", m).module_key,
            "vision_tower.blocks.2.3.spatial_block.conv1.weight");
  EXPECT_EQ(florence2_key_target("vision_tower.blocks.0.0.spatial_block.window_attn.norm.bias", m).module_key,
            "vision_tower.blocks.0.0.spatial_block.norm1.bias");
  EXPECT_EQ(florence2_key_target("vision_tower.blocks.0.0.channel_block.channel_attn.fn.qkv.weight", m).module_key,
            "vision_tower.blocks.0.0.channel_block.channel_attn.qkv.weight");
  EXPECT_EQ(florence2_key_target("vision_tower.blocks.1.0.channel_block.ffn.fn.net.fc2.bias", m).module_key,
            "vision_tower.blocks.1.0.channel_block.ffn.fc2.bias");
  EXPECT_EQ(florence2_key_target("vision_tower.blocks.1.0.channel_block.ffn.norm.weight", m).module_key,
            "vision_tower.blocks.1.0.channel_block.norm2.weight");
  auto projection = florence2_key_target("image_projection", m);
  EXPECT_EQ(projection.module_key, "multi_modal_projector.image_projection.weight");
  EXPECT_TRUE(projection.transposed);
  EXPECT_EQ(florence2_key_target("image_pos_embed.row_embeddings.weight", m).module_key,
            "multi_modal_projector.image_position_embed.row_embeddings.weight");
  EXPECT_EQ(florence2_key_target("vision_tower.head.weight", m).module_key, "");
  for (const char* tied : {"language_model.lm_head.weight", "language_model.model.shared.weight",
                           "language_model.model.encoder.embed_tokens.weight"})
    EXPECT_EQ(florence2_key_target(tied, m).module_key, "language_model.shared.weight") << tied;
  EXPECT_EQ(florence2_key_target("language_model.model.decoder.layers.1.fc1.weight", m).module_key,
            "language_model.decoder.layers.1.fc1.weight");
  const auto t = Florence2Layout::kTransformers;
  EXPECT_EQ(florence2_key_target("lm_head.weight", t).module_key, "language_model.shared.weight");
  EXPECT_EQ(florence2_key_target("model.vision_tower.convs.0.conv.weight", t).module_key,
            "vision_tower.convs.0.conv.weight");
}

// Pillow's bicubic to 768 x 768 and the processor's float32 arithmetic reproduce its pixels;
// the resized 8-bit image is compared exactly, the floats to within one float32 rounding.
TEST(Florence2Pixels, EqualProcessor) {
  const auto facts = read_json(fixture("pixels/facts.json"));
  ls::io::SafetensorsReader golden(fixture("pixels/golden.safetensors"));
  const Florence2Pixels spec;  // the hub's preprocessor_config.json values
  EXPECT_EQ(spec.width, facts["size"]["width"].get<int>());
  const auto rows = facts["rows"].get<std::vector<int64_t>>();
  for (const auto& image : facts["images"]) {
    const std::string name = fs::path(image["file"].get<std::string>()).stem().string();
    cv::Mat rgb = ls::io::read_image_rgb(fixture("pixels/" + image["file"].get<std::string>()).string());
    cv::Mat resized = pillow_resize_bicubic(rgb, spec.width, spec.height);
    cv::Mat expected = ls::io::read_image_rgb(fixture("pixels/" + image["resized"].get<std::string>()).string());
    EXPECT_EQ(cv::norm(resized, expected, cv::NORM_INF), 0.0) << name;
    auto pixels = florence2_pixels_from_rgb(rgb, spec)[0];
    ASSERT_EQ(pixels.sizes(), (at::IntArrayRef{3, 768, 768})) << name;
    auto got_rows = pixels.index_select(1, torch::tensor(rows, torch::kInt64));
    EXPECT_LE(worst_diff(got_rows, golden.load(name + ".rows")), 1e-6) << name;
    auto patch = pixels.narrow(1, 376, 16).narrow(2, 376, 16);
    EXPECT_LE(worst_diff(patch, golden.load(name + ".patch")), 1e-6) << name;
    auto sums = pixels.to(torch::kDouble).sum({1, 2});
    // 589,824 values per channel of magnitude <= 2.7, summed in float64.
    EXPECT_LE(worst_diff(sums, golden.load(name + ".channel_sum")), 1e-6 * 768 * 768) << name;
  }
}

TEST(Florence2Pixels, PreprocessorConfigIsRead) {
  auto spec = read_florence2_pixels(fixture("tiny-microsoft"));
  EXPECT_EQ(spec.width, 224);
  EXPECT_EQ(spec.height, 224);
  EXPECT_FLOAT_EQ(spec.mean[0], 0.485f);
  // transformers 5 keeps them under "image_processor" in processor_config.json.
  EXPECT_EQ(read_florence2_pixels(fixture("tiny-transformers")).width, 224);
  ls::test::TempDir tmp;
  ls::core::write_file_atomic(tmp.path() / "preprocessor_config.json", R"({"resample": 2})");
  expect_error([&] { read_florence2_pixels(tmp.path()); }, "not bicubic");
}

TEST(Florence2Text, TaskPromptsAndCleaning) {
  EXPECT_EQ(florence2_task_prompt("<CAPTION>"), "What does the image describe?");
  EXPECT_EQ(florence2_task_prompt("<MORE_DETAILED_CAPTION>"), "Describe with a paragraph what is shown in the image.");
  expect_error([] { florence2_task_prompt("<OD>"); }, "<DETAILED_CAPTION>");
  EXPECT_EQ(florence2_clean_text("</s><s>A cat on a mat.</s><pad><pad>"), "A cat on a mat.");
}

TEST(Florence2Text, StripPhrases) {
  const auto& p = florence2_default_strip_phrases();
  EXPECT_EQ(strip_caption_phrases("The image shows a woman in a red dress.", p), "A woman in a red dress.");
  EXPECT_EQ(strip_caption_phrases("In this image, we can see a dog.", p), "We can see a dog.");
  EXPECT_EQ(strip_caption_phrases("The image shows that a storm is coming.", p), "A storm is coming.");
  EXPECT_EQ(strip_caption_phrases("the IMAGE depicts two cats", p), "Two cats");
  // Whole words only; nothing left means nothing stripped.
  EXPECT_EQ(strip_caption_phrases("The image isolates a leaf.", p), "The image isolates a leaf.");
  EXPECT_EQ(strip_caption_phrases("The image shows", p), "The image shows");
  EXPECT_EQ(strip_caption_phrases("A dog runs.", p), "A dog runs.");
}

TEST(Florence2Text, CombineTemplate) {
  auto t = parse_caption_template("{prefix}{tags}. {caption}", "--combine");
  EXPECT_TRUE(t.uses("tags"));
  EXPECT_EQ(render_caption_template(t, "ohwx", {"1girl", "solo"}, "A woman.", ", "), "ohwx, 1girl, solo. A woman.");
  EXPECT_EQ(render_caption_template(t, "", {"1girl"}, "A woman.", ", "), "1girl. A woman.");
  EXPECT_EQ(render_caption_template(t, "ohwx", {}, "A woman.", ", "), "ohwx, A woman.");
  EXPECT_EQ(render_caption_template(parse_caption_template("{{x}} {caption}", "f"), "", {}, "c", ", "), "{x} c");
  expect_error([] { parse_caption_template("{tag}", "--combine"); }, "unknown field {tag}");
  expect_error([] { parse_caption_template("{caption", "--combine"); }, "without '}'");
  expect_error([] { parse_caption_template("plain", "--combine"); }, "no field");
}

// The captioning run: Florence-2 alone and with the tagger, through the tagger's file policy,
// history and undo. The texts are the model's own (its numbers are checked above).
struct F2Dataset {
  ls::test::TempDir root;
  std::vector<std::string> images;
  fs::path dir;
  F2Dataset() {
    ls::data::SyntheticOptions o;
    o.images = 3, o.min_side = 64, o.max_side = 96, o.seed = 11;
    auto d = ls::data::make_synthetic_dataset((root / "data").string(), o);
    dir = d.train_dir;
    images = d.images;
  }
  fs::path caption(size_t i) const { return fs::path(images[i]).replace_extension(".txt"); }
};

CaptionOptions florence_options(const F2Dataset& d) {
  CaptionOptions o;
  o.dir = d.dir.string();
  o.captioners = {"florence2"};
  o.florence2_dir = fixture("tiny-microsoft").string();
  o.max_new_tokens = 12;
  o.batch_size = 2;
  o.show_progress = false;
  o.existing = ExistingMode::kOverwrite;
  return o;
}

std::vector<std::string> direct_captions(const F2Dataset& d, const std::string& dir, int64_t max_new_tokens) {
  auto model = load_florence2(dir, torch::kCPU, torch::kFloat);
  Florence2CaptionOptions o;
  o.generate = Florence2GenerateOptions::from(model.config.text);
  o.generate.max_new_tokens = max_new_tokens;
  std::vector<at::Tensor> pixels;
  for (const auto& image : d.images) pixels.push_back(florence2_pixels_from_file(image, model.pixels));
  return florence2_captions(model, torch::cat(pixels), o);
}

TEST(Florence2Caption, WritesTheModelsCaptionsAndUndoes) {
  F2Dataset d;
  std::map<std::string, std::string> before;
  for (size_t i = 0; i < d.images.size(); ++i) before[d.caption(i).string()] = ls::core::read_file(d.caption(i));
  auto o = florence_options(d);
  o.selection.prefix = "ohwx";
  auto s = run_caption(o);
  EXPECT_EQ(s.captioned, 3);
  EXPECT_TRUE(s.failed.empty());
  // Batches of 2 and 1 give the texts of one batch of 3: rows are independent.
  const auto expected = direct_captions(d, o.florence2_dir, 12);
  for (size_t i = 0; i < d.images.size(); ++i)
    EXPECT_EQ(ls::core::read_file(d.caption(i)), "ohwx, " + expected[i] + "\n") << i;
  auto log = read_json(s.log_path);
  EXPECT_EQ(log["options"]["task"], "<DETAILED_CAPTION>");
  auto undo = undo_run(d.dir.string(), s.run);
  EXPECT_EQ(undo.restored, 3);
  for (const auto& [path, text] : before) EXPECT_EQ(ls::core::read_file(path), text);
}

TEST(Florence2Caption, CombinesWithTheTaggerInOneFile) {
  F2Dataset d;
  auto o = florence_options(d);
  o.captioners = {"wd14", "florence2"};
  o.model_dir = (fs::path(ls::test::kSourceDir) / "tests/fixtures/tagger/vit").string();
  o.selection.general_threshold = 0.5;
  o.selection.character_threshold = 0.5;
  o.combine = "{tags} | {caption}";
  auto s = run_caption(o);
  EXPECT_EQ(s.captioned, 3);
  const auto expected = direct_captions(d, o.florence2_dir, 12);
  auto tags_only = o;
  tags_only.captioners = {"wd14"};
  tags_only.dry_run = true;
  // The tagger's part equals a tagger-only run's caption (without its newline).
  for (size_t i = 0; i < d.images.size(); ++i) {
    const std::string text = ls::core::read_file(d.caption(i));
    const size_t bar = text.find(" | ");
    ASSERT_NE(bar, std::string::npos) << text;
    EXPECT_EQ(text.substr(bar + 3), expected[i] + "\n");
    EXPECT_FALSE(text.substr(0, bar).empty());
  }
  // Append keeps the file and adds nothing the second time.
  o.existing = ExistingMode::kAppend;
  auto again = run_caption(o);
  EXPECT_EQ(again.unchanged, 3);
}

TEST(Florence2Caption, OptionErrorsComeBeforeAnyModelLoads) {
  F2Dataset d;
  auto o = florence_options(d);
  o.florence2_task = "<OD>";
  expect_error([&] { run_caption(o); }, "unknown task");
  o = florence_options(d);
  o.combine = "{tags}";
  expect_error([&] { run_caption(o); }, "no {caption}");
  o = florence_options(d);
  o.captioners = {"blip"};
  expect_error([&] { run_caption(o); }, "unknown captioner 'blip'");
  o = florence_options(d);
  o.save_probs = true;
  expect_error([&] { run_caption(o); }, "--save-probs");
}

// The stable parity interface: `debug florence2` writes what the tests above compute.
TEST(Florence2Debug, CommandWritesTheReferencesTensorsAndGeneration) {
  ls::test::TempDir tmp;
  const std::string out = (tmp.path() / "out.safetensors").string();
  auto r = ls::test::run_lorastudio("debug florence2 --model_dir " + fixture("tiny-microsoft").string() + " --inputs " +
                                    fixture("tiny-golden.safetensors").string() + " --output " + out + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ls::io::SafetensorsReader got(out), golden(fixture("tiny-golden.safetensors"));
  for (const char* name : {"image_features", "encoder_hidden_states", "logits"}) {
    auto expected = golden.load(name);
    auto actual = got.load(name);
    if (std::string(name) == "logits") expected = expected.narrow(2, 0, actual.size(2));
    ASSERT_EQ(actual.sizes(), expected.sizes()) << name;
    EXPECT_LE(worst_diff(actual, expected), 1e-4 * largest(expected)) << name;
  }
  const auto reference = read_json(fixture("tiny-generate.json"));
  for (const auto& c : reference["cases"]) {
    const auto beams = c["num_beams"].get<int64_t>(), tokens = c["max_new_tokens"].get<int64_t>();
    r = ls::test::run_lorastudio("debug florence2 --generate --model_dir " + fixture("tiny-transformers").string() +
                                 " --inputs " + fixture("tiny-golden.safetensors").string() + " --output " + out +
                                 " --num_beams " + std::to_string(beams) + " --max_new_tokens " +
                                 std::to_string(tokens) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    ls::io::SafetensorsReader generated(out);
    auto sequences = generated.load("sequences");
    const auto expected = c["padded_sequences"].get<std::vector<std::vector<int64_t>>>();
    ASSERT_EQ(sequences.size(0), static_cast<int64_t>(expected.size()));
    for (int64_t b = 0; b < sequences.size(0); ++b) {
      std::vector<int64_t> row(sequences[b].data_ptr<int64_t>(), sequences[b].data_ptr<int64_t>() + sequences.size(1));
      EXPECT_EQ(row, expected[b]) << "beams " << beams << " tokens " << tokens;
    }
    auto texts = nlohmann::json::parse(generated.metadata().at("texts")).get<std::vector<std::string>>();
    ASSERT_EQ(texts.size(), expected.size());
    for (size_t b = 0; b < texts.size(); ++b)
      EXPECT_EQ(florence2_clean_text(texts[b]), c["rows"][b]["caption"].get<std::string>());
  }
}

// A downloaded pytorch_model.bin whose pickle would run a command: `caption` stops with one
// error line naming the global and a non-zero exit, the command never ran, no caption changed.
TEST(Florence2Caption, APickleThatRunsCodeIsRefusedAndRunsNothing) {
  F2Dataset d;
  ls::test::TempDir tmp;
  const fs::path model = tmp.path() / "Florence-2-base";
  fs::copy(fixture("tiny-microsoft"), model);
  const fs::path bad = fs::path(ls::test::kSourceDir) / "tests/fixtures/torch_pickle";
  const fs::path marker = tmp.path() / "marker";
  for (const char* name : {"malicious_system.bin", "malicious_exec.bin", "malicious_eval.bin",
                           "malicious_popen.bin", "malicious_proto4.bin"}) {
    fs::copy_file(bad / name, model / "pytorch_model.bin", fs::copy_options::overwrite_existing);
    auto r = ls::test::run_lorastudio("caption " + d.dir.string() + " --captioner florence2 --existing overwrite "
                                      "--model_dir " + model.string() + " 2>&1");
    EXPECT_NE(r.exit_code, 0) << name;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << name << ": " << r.out;
    EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("pytorch_model.bin"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("refusing"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(marker)) << name;
    EXPECT_FALSE(fs::exists("/tmp/lorastudio-pickle-marker")) << name;
  }
  for (size_t i = 0; i < d.images.size(); ++i) EXPECT_TRUE(fs::exists(d.caption(i)));
  EXPECT_FALSE(fs::exists(d.dir / ".lorastudio" / "caption_history.jsonl"));
}

}  // namespace florence2_model_test
