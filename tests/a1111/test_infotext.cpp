// sample/infotext: the exact A1111 layout (create_infotext) for a known case, quoting equal to
// Python's json.dumps(ensure_ascii=False) outputs, A1111-written texts (current and pre-1.9
// "DPM++ 2M Karras" form, LoRA tags, Lora hashes, extra keys) parsed field by field, exact
// round trips of 300 seeded random parameter sets, and ls::Error naming the text for bad input.
#include <cmath>
#include <functional>

#include "a1111/infotext.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "support/support.h"

namespace infotext_test {

using ls::a1111::format_infotext;
using ls::a1111::GenerationParams;
using ls::a1111::InfotextLora;
using ls::a1111::parse_infotext;
using ls::test::error_of;

InfotextLora lora(const std::string& name, double strength, std::optional<double> unet = std::nullopt,
                  const std::string& hash = "", const std::string& path = "") {
  InfotextLora l;
  l.name = name;
  l.strength = strength;
  l.unet_strength = unet;
  l.hash = hash;
  l.path = path;
  return l;
}

GenerationParams known_params() {
  GenerationParams p;
  p.prompt = "a photo of a cat, (sitting:1.2)";
  p.negative_prompt = "blurry, lowres";
  p.steps = 20;
  p.sampler = "DPM++ 2M";
  p.schedule_type = "Karras";
  p.cfg_scale = 7;
  p.seed = 1234567890;
  p.width = 1024;
  p.height = 1024;
  p.model = "sd_xl_base_1.0";
  p.model_hash = "31e35c80fc";
  p.loras = {lora("style", 0.8, std::nullopt, "0123456789ab", "/loras/style.safetensors"),
             lora("detail", 1, 0.5, "ba9876543210")};
  return p;
}

TEST(Infotext, WritesA1111Layout) {
  EXPECT_EQ(format_infotext(known_params()),
            "a photo of a cat, (sitting:1.2) <lora:style:0.8> <lora:detail:1:0.5>\n"
            "Negative prompt: blurry, lowres\n"
            "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, Size: 1024x1024, "
            "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: \"style: 0123456789ab, detail: "
            "ba9876543210\", Lora paths: \"style: /loras/style.safetensors\", Version: lorastudio 0.1.0");
  GenerationParams p;  // defaults; no prompt, negative, model or LoRA: only the parameters line
  p.cfg_scale = 7.5;
  p.seed = -1;
  p.schedule_type.clear();
  p.version.clear();
  p.extra = {{"Clip skip", "2"}, {"Hires upscaler", "4x-UltraSharp"}};
  EXPECT_EQ(format_infotext(p),
            "Steps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: -1, Size: 1024x1024, Clip skip: 2, "
            "Hires upscaler: 4x-UltraSharp");
}

TEST(Infotext, NumbersUseTheShortestExactText) {
  using ls::a1111::format_number;
  EXPECT_EQ(format_number(7), "7");
  EXPECT_EQ(format_number(7.5), "7.5");
  EXPECT_EQ(format_number(0.8), "0.8");
  EXPECT_EQ(format_number(-0.25), "-0.25");
  EXPECT_EQ(format_number(0.1 + 0.2), "0.30000000000000004");  // Python repr gives the same digits
  EXPECT_EQ(format_number(1e-05), "1e-05");
  EXPECT_NE(error_of([] { format_number(std::nan("")); }), "");
}

TEST(Infotext, QuotesAsA1111) {
  using ls::a1111::infotext_quote;
  // Right-hand sides printed by Python 3: json.dumps(s, ensure_ascii=False).
  EXPECT_EQ(infotext_quote("plain value"), "plain value");
  EXPECT_EQ(infotext_quote("a, b"), "\"a, b\"");
  EXPECT_EQ(infotext_quote("x: y"), "\"x: y\"");
  EXPECT_EQ(infotext_quote("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(infotext_quote("line1\nline2"), "\"line1\\nline2\"");
  EXPECT_EQ(infotext_quote("tab\t"), "\"tab\\t\"");
  EXPECT_EQ(infotext_quote("\x01"), "\"\\u0001\"");
  EXPECT_EQ(infotext_quote("back\\slash, x"), "\"back\\\\slash, x\"");
  EXPECT_EQ(infotext_quote("\xe7\x8c\xab, \xe7\x8a\xac"), "\"\xe7\x8c\xab, \xe7\x8a\xac\"");  // 猫, 犬 kept as is
  // Beyond A1111's quote(): values its parser would change are quoted too (json.loads reads them).
  EXPECT_EQ(infotext_quote(""), "\"\"");
  EXPECT_EQ(infotext_quote(" edge"), "\" edge\"");
}

TEST(Infotext, ReadsA1111Text) {
  const std::string text =
      "masterpiece, best quality, 1girl, <lora:add_detail:0.6>, looking at viewer, "
      "<lora:xl_more_art-full_v1:0.8:1>\n"
      "Negative prompt: (worst quality, low quality:1.4), watermark\n"
      "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3742938475, Size: 832x1216, "
      "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, VAE hash: 235745af8d, VAE: sdxl_vae.safetensors, "
      "Clip skip: 2, Lora hashes: \"add_detail: 7c6bad76eb54, xl_more_art-full_v1: fe3b4816be83\", "
      "Wildcard prompt: \"a, \\\"b\\\"\", Hires upscale: 1.5, Hires steps: 15, Denoising strength: 0.4, "
      "Version: v1.10.1";
  GenerationParams p = parse_infotext(text, "a1111.png");
  EXPECT_EQ(p.prompt, "masterpiece, best quality, 1girl, , looking at viewer,");
  EXPECT_EQ(p.negative_prompt, "(worst quality, low quality:1.4), watermark");
  EXPECT_EQ(p.steps, 30);
  EXPECT_EQ(p.sampler, "DPM++ 2M");
  EXPECT_EQ(p.schedule_type, "Karras");
  EXPECT_EQ(p.cfg_scale, 6.5);
  EXPECT_EQ(p.seed, 3742938475);
  EXPECT_EQ(p.width, 832);
  EXPECT_EQ(p.height, 1216);
  EXPECT_EQ(p.model, "sd_xl_base_1.0");
  EXPECT_EQ(p.model_hash, "31e35c80fc");
  EXPECT_EQ(p.version, "v1.10.1");
  ASSERT_EQ(p.loras.size(), 2u);
  EXPECT_EQ(p.loras[0], lora("add_detail", 0.6, std::nullopt, "7c6bad76eb54"));
  EXPECT_EQ(p.loras[1], lora("xl_more_art-full_v1", 0.8, 1.0, "fe3b4816be83"));
  EXPECT_EQ(p.extra, (std::map<std::string, std::string>{{"Clip skip", "2"},
                                                          {"Denoising strength", "0.4"},
                                                          {"Hires steps", "15"},
                                                          {"Hires upscale", "1.5"},
                                                          {"VAE", "sdxl_vae.safetensors"},
                                                          {"VAE hash", "235745af8d"},
                                                          {"Wildcard prompt", "a, \"b\""}}));
  // What lorastudio writes back reads back the same.
  EXPECT_EQ(parse_infotext(format_infotext(p), "again"), p);
}

TEST(Infotext, ReadsPre19SamplerNamesAndOldTexts) {
  // The example of parse_generation_parameters' docstring, with a pre-1.9 combined sampler name.
  const std::string text =
      "girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy makeup, by "
      "Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate\n"
      "Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, poorly "
      "drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing\n"
      "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b";
  GenerationParams p = parse_infotext(text, "old.png");
  EXPECT_EQ(p.sampler, "DPM++ 2M");
  EXPECT_EQ(p.schedule_type, "Karras");
  EXPECT_EQ(p.model_hash, "45dee52b");
  EXPECT_EQ(p.version, "");
  EXPECT_EQ(p.seed, 965400086);
  EXPECT_TRUE(p.loras.empty());
  EXPECT_EQ(p.prompt.substr(0, 28), "girl with an artist's beret,");
  EXPECT_EQ(p.negative_prompt.substr(p.negative_prompt.size() - 13), "messy drawing");
  auto sampler_of = [](const std::string& s) {
    auto q = parse_infotext("x\nSteps: 20, Sampler: " + s + ", CFG scale: 7, Seed: 1, Size: 8x8", "s");
    return q.sampler + "|" + q.schedule_type;
  };
  EXPECT_EQ(sampler_of("Euler a"), "Euler a|");
  EXPECT_EQ(sampler_of("DPM++ 2M SDE Exponential"), "DPM++ 2M SDE|Exponential");
  EXPECT_EQ(sampler_of("DPM++ 2M SGM Uniform"), "DPM++ 2M|SGM Uniform");
  EXPECT_EQ(sampler_of("DDIM"), "DDIM|");
  // With "Schedule type" present the sampler is taken as written.
  EXPECT_EQ(parse_infotext("Steps: 1, Sampler: LMS Karras, Schedule type: Uniform, CFG scale: 1, Seed: 1, "
                           "Size: 8x8", "s").sampler, "LMS Karras");
}

TEST(Infotext, PromptsKeepCommasQuotesNewlinesAndUnicode) {
  GenerationParams p = known_params();
  p.prompt = "line one, \"quoted\": yes\nline two \xe7\x8c\xab\xf0\x9f\x90\x88 back\\slash\n(a:1.1)";
  p.negative_prompt = "neg one\nneg, two";
  p.model = "my \"model\", v2: final";
  p.model_path = "C:\\models\\my model, v2.safetensors";
  p.loras = {lora("we,ird name", 0.125, std::nullopt, "abcdefabcdef", "/p/100%, done/x.safetensors")};
  const std::string text = format_infotext(p);
  EXPECT_NE(text.find("Model: \"my \\\"model\\\", v2: final\""), std::string::npos) << text;
  EXPECT_NE(text.find("Lora hashes: \"weird name: abcdefabcdef\""), std::string::npos) << text;
  EXPECT_NE(text.find("Lora paths: \"we%2Cird name: /p/100%25%2C done/x.safetensors\""), std::string::npos) << text;
  EXPECT_NE(text.find("Model path: \"C:\\\\models\\\\my model, v2.safetensors\""), std::string::npos) << text;
  EXPECT_EQ(parse_infotext(text, "t"), p);
}

TEST(Infotext, TagsAlreadyInThePromptAreNotRepeated) {
  GenerationParams p = known_params();
  p.prompt = "a <lora:style:0.8> b";
  const std::string text = format_infotext(p);
  EXPECT_EQ(text.substr(0, text.find('\n')), "a <lora:style:0.8> b <lora:detail:1:0.5>");
  GenerationParams back = parse_infotext(text, "t");
  EXPECT_EQ(back.prompt, "a  b");  // the tag leaves, its spaces stay (as A1111's re.sub)
  EXPECT_EQ(back.loras, p.loras);
  p.prompt = "a <lora:style:0.7>";
  EXPECT_NE(error_of([&] { format_infotext(p); }).find("other strengths"), std::string::npos);
  // Named arguments and lyco tags are read as A1111 does.
  GenerationParams q = parse_infotext("<lyco:n:unet=0.3:te=0.2> x\nSteps: 1, Sampler: Euler, CFG scale: 1, "
                                      "Seed: 1, Size: 8x8", "t");
  EXPECT_EQ(q.prompt, "x");
  EXPECT_EQ(q.loras, std::vector<InfotextLora>{lora("n", 0.2, 0.3)});
  // Lines are stripped on reading, as A1111 does.
  GenerationParams r = known_params();
  r.prompt = "  a  \n b ";
  EXPECT_EQ(parse_infotext(format_infotext(r), "t").prompt, "a\nb");
}

TEST(Infotext, UnmatchedLoraHashesStayInExtra) {
  const std::string text = "x <lora:mine:1>\nSteps: 1, Sampler: Euler, CFG scale: 1, Seed: 1, Size: 8x8, "
                           "Lora hashes: \"other: 0123456789ab\"";
  GenerationParams p = parse_infotext(text, "t");
  EXPECT_EQ(p.loras, std::vector<InfotextLora>{lora("mine", 1)});
  EXPECT_EQ(p.extra.at("Lora hashes"), "other: 0123456789ab");
  EXPECT_EQ(format_infotext(p), text);  // no Version in the text, so none written back
  EXPECT_EQ(parse_infotext(format_infotext(p), "t"), p);
}

std::string pick(ls::core::Rng& rng, const std::vector<std::string>& pool) { return pool[rng.below(pool.size())]; }

std::string random_text(ls::core::Rng& rng, int max_lines) {
  const std::vector<std::string> words = {
      "cat",  "a, b",      "x: y",       "\"q\"",   "\\",     "(tag:1.2)", "[a|b]", "\xe7\x8c\xab",
      "\xf0\x9f\x8c\xb8", "caf\xc3\xa9", "Steps: 5", "{x}",  "50%",       "--",    "<hypernet:h:1>", "a\tb"};
  std::string text;
  const int lines = static_cast<int>(rng.range(1, max_lines));
  for (int l = 0; l < lines; ++l) {
    if (l) text += '\n';
    const int n = static_cast<int>(rng.range(1, 6));
    for (int w = 0; w < n; ++w) text += (w ? " " : "") + pick(rng, words);
  }
  return text;
}

GenerationParams random_params(ls::core::Rng& rng) {
  GenerationParams p;
  p.prompt = rng.below(8) ? random_text(rng, 3) : "";
  p.negative_prompt = rng.below(3) ? random_text(rng, 2) : "";
  p.steps = rng.range(1, 150);
  p.sampler = pick(rng, {"Euler", "Euler a", "DPM++ 2M", "DDIM", "DPM++ 2M SDE"});
  p.schedule_type = pick(rng, {"", "Karras", "Automatic", "SGM Uniform", "Exponential"});
  p.cfg_scale = rng.below(2) ? static_cast<double>(rng.range(1, 30)) : rng.uniform() * 30;
  p.seed = static_cast<int64_t>(rng.next());  // any 64-bit value, negative ones included
  p.width = 64 * rng.range(8, 32);
  p.height = 64 * rng.range(8, 32);
  p.model = pick(rng, {"", "sd_xl_base_1.0", "my, model: v2", "\xe3\x83\xa2\xe3\x83\x87\xe3\x83\xab"});
  p.model_hash = rng.below(2) ? "31e35c80fc" : "";
  p.model_path = pick(rng, {"", "/models/sd_xl_base_1.0.safetensors", "C:\\m\\a, b.safetensors"});
  const int n_loras = static_cast<int>(rng.below(4));
  for (int i = 0; i < n_loras; ++i) {
    InfotextLora l;
    l.name = pick(rng, {"style", "detail v2", "a,b", "x-y_z", "\xe7\x8c\xab"}) + std::to_string(i);
    l.strength = rng.below(2) ? rng.uniform() * 4 - 2 : 1.0;
    if (rng.below(2)) l.unet_strength = rng.uniform();
    l.hash = rng.below(2) ? "0123456789ab" : "";
    l.path = pick(rng, {"", "/loras/" + l.name + ".safetensors", "/p/100%, x/y.safetensors", "C:\\l\\z.st"});
    p.loras.push_back(l);
  }
  if (rng.below(2)) p.extra["Clip skip"] = "2";
  if (rng.below(2)) p.extra["Hires upscaler"] = pick(rng, {"Latent", "4x, \"Ultra\"", "", " padded "});
  if (rng.below(4) == 0) p.version.clear();
  return p;
}

TEST(Infotext, RandomParametersRoundTripExactly) {
  ls::core::Rng rng(2024, {ls::core::purpose_id("infotext_round_trip")});
  for (int i = 0; i < 300; ++i) {
    const GenerationParams p = random_params(rng);
    const std::string text = format_infotext(p);
    const GenerationParams back = parse_infotext(text, "random");
    ASSERT_TRUE(back == p) << "case " << i << ":\n" << text << "\n---\n" << format_infotext(back);
    ASSERT_EQ(format_infotext(back), text) << "case " << i;
  }
}

TEST(Infotext, MalformedTextNamesItself) {
  auto err = [](const std::string& text) { return error_of([&] { parse_infotext(text, "bad.png"); }); };
  const std::string tail = ", Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512";
  EXPECT_NE(err("just a prompt, nothing else").find("bad.png: no parameters line"), std::string::npos);
  EXPECT_NE(err("").find("bad.png: no parameters line"), std::string::npos);
  EXPECT_NE(err("p\nSteps: twenty" + tail).find("bad.png: Steps: expected an integer, got 'twenty'"),
            std::string::npos);
  EXPECT_NE(err("p\nSteps: 20, Sampler: Euler, CFG scale: 7, Size: 512x512").find("bad.png: the parameters line "
                                                                                  "has no 'Seed'"),
            std::string::npos);
  EXPECT_NE(err("p\nSteps: 20, Sampler: Euler, CFG scale: nan, Seed: 1, Size: 8x8").find("finite number"),
            std::string::npos);
  EXPECT_NE(err("p\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512").find("bad.png: Size must be"),
            std::string::npos);
  EXPECT_NE(err("<lora:x:1:dyn=16>\nSteps: 20" + tail).find("bad.png: LoRA tag <lora:x:1:dyn=16>: dynamic dim"),
            std::string::npos);
  EXPECT_NE(err("<lora:x:strong>\nSteps: 20" + tail).find("expected a finite number, got 'strong'"),
            std::string::npos);
  EXPECT_NE(err("<lora:x:1> <lora:x:2>\nSteps: 20" + tail).find("tagged twice"), std::string::npos);
  EXPECT_NE(err("<lora:x:1>\nSteps: 20" + tail + ", Lora paths: \"y: /y\"").find("names 'y'"), std::string::npos);
  EXPECT_NE(err("p\nSteps: 20" + tail + std::string(", Model: \xff")).find("UTF-8"), std::string::npos);
}

TEST(Infotext, RefusesParametersThatWouldNotReadBack) {
  auto err = [](const std::function<void(GenerationParams&)>& change) {
    GenerationParams p = known_params();
    change(p);
    return error_of([&] { format_infotext(p); });
  };
  EXPECT_NE(err([](auto& p) { p.loras[0].name = "a:b"; }).find("holds ':'"), std::string::npos);
  EXPECT_NE(err([](auto& p) { p.loras[0].name = "a\nb"; }).find("control character"), std::string::npos);
  EXPECT_NE(err([](auto& p) { p.loras[1].name = "style"; }).find("listed twice"), std::string::npos);
  EXPECT_NE(err([](auto& p) { p.loras[1].name = "sty,le"; }).find("same name in 'Lora hashes'"), std::string::npos);
  EXPECT_NE(err([](auto& p) { p.prompt = "ok\n Negative prompt: no"; }).find("starts with 'Negative prompt:'"),
            std::string::npos);
  EXPECT_NE(err([](auto& p) { p.extra["Seed"] = "3"; }).find("is a GenerationParams field"), std::string::npos);
  EXPECT_NE(err([](auto& p) { p.extra["bad,key"] = "3"; }).find("not an A1111 key"), std::string::npos);
  EXPECT_NE(err([](auto& p) { p.cfg_scale = INFINITY; }).find("non-finite"), std::string::npos);
  EXPECT_NE(err([](auto& p) { p.loras[0].strength = NAN; }).find("non-finite"), std::string::npos);
}

// crash-c482...: a prompt with an unclosed "<lora:detail tweaker:..." and a closed <lora:style_a:...>.
// The reader takes style_a out; the writer appended its tag after the unclosed one, whose '<' then
// took the written tag's '>' and read back as one tag with an unknown third argument. The writer
// now refuses what would not read back, and a prompt without LoRAs to write still round-trips.
TEST(Infotext, UnclosedTagBeforeAWrittenTagIsRefused) {
  const std::string text = ls::core::read_file(std::string(ls::test::kSourceDir) +
                                               "/tests/fixtures/fuzz/fuzz_infotext/crash-c482fb48d5de4bf3b3a8d8d9f6c3f361ddca2d28");
  GenerationParams p = parse_infotext(text, "crash");
  ASSERT_EQ(p.loras.size(), 1u);
  EXPECT_EQ(p.loras[0].name, "style_a");
  EXPECT_NE(p.prompt.find("<lora:detail tweaker:"), std::string::npos);
  EXPECT_NE(error_of([&] { format_infotext(p); }).find("unclosed '<name:'"), std::string::npos);
  p.loras.clear();
  const std::string written = format_infotext(p);
  EXPECT_EQ(format_infotext(parse_infotext(written, "written")), written);
}

// crash-0db2...: a second "Negative prompt: " line adds an empty last line to the negative prompt,
// as A1111's reader does; written and read again, it stays (the fuzz target's oracle had stripped it).
TEST(Infotext, EmptyLastLineOfTheNegativePromptReadsBack) {
  const std::string text = ls::core::read_file(std::string(ls::test::kSourceDir) +
                                               "/tests/fixtures/fuzz/fuzz_infotext/crash-0db2938aadc509619c3c945bf87f9a4830e966e0");
  const GenerationParams p = parse_infotext(text, "crash");
  ASSERT_FALSE(p.negative_prompt.empty());
  EXPECT_EQ(p.negative_prompt.back(), '\n');
  const std::string written = format_infotext(p);
  EXPECT_TRUE(parse_infotext(written, "written") == p);
  EXPECT_EQ(format_infotext(parse_infotext(written, "written")), written);
}

// crash-f9f1...: "portrait, <lora:...>" on the first of two prompt lines. Taking the tag out left
// "portrait, " with its blank; the writer put the tag back at the end of the prompt, and the reread
// stripped the first line, so a second write differed. The reader strips every line it took a tag from.
TEST(Infotext, TakingATagLeavesNoBlankAtTheLineEnd) {
  const std::string text = ls::core::read_file(std::string(ls::test::kSourceDir) +
                                               "/tests/fixtures/fuzz/fuzz_infotext/crash-f9f1d6185c34445f8ced29f8d064ff76bb803d27");
  const GenerationParams p = parse_infotext(text, "crash");
  ASSERT_EQ(p.loras.size(), 1u);
  EXPECT_EQ(p.prompt.substr(0, p.prompt.find('\n')), "portrait,");
  const std::string written = format_infotext(p);
  EXPECT_TRUE(parse_infotext(written, "written") == p);
  EXPECT_EQ(format_infotext(parse_infotext(written, "written")), written);
  EXPECT_EQ(parse_infotext("a, <lora:x:1>\nb <lora:y:0.5> c\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64", "t").prompt,
            "a,\nb  c");
}

// crash-9b81f854: `Lora hashes: ""` with no LoRA in the prompt was kept as an extra value that
// the writer, rightly, leaves out (an empty field), so the text read back lacked it.
TEST(Infotext, AnEmptyLoraHashesListIsNotKept) {
  const std::string text = ls::core::read_file(std::string(ls::test::kSourceDir) +
                                               "/tests/fixtures/fuzz/fuzz_infotext/crash-9b81f8548f6ebc8c7dacd575bae15a1aa20b1528");
  const GenerationParams p = parse_infotext(text, "crash");
  EXPECT_EQ(p.extra.count("Lora hashes"), 0u);
  const std::string written = format_infotext(p);
  EXPECT_TRUE(parse_infotext(written, "written") == p);
  const GenerationParams plain =
      parse_infotext("a cat\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, Lora hashes: \"\"", "t");
  EXPECT_TRUE(plain.extra.empty());
  EXPECT_TRUE(plain.loras.empty());
}

}  // namespace infotext_test
