// `lorastudio sheet [SHEET.toml] [flags]`: a contact sheet over up to three axes plus pages
// (LoRA files or globs of epochs, strengths, prompts, seeds, samplers, steps, CFG, base models).
#include <cstdio>

#include "cli/commands.h"
#include "cli/request_flags.h"
#include "core/error.h"
#include "core/runtime.h"
#include "sheet/sheet_runner.h"

namespace ls::cli {

namespace {

struct SheetOptions {
  std::string toml;
  std::map<std::string, std::string> keys;  // flag name -> value, only when given
  std::string x, y, z, page;
  std::vector<std::string> loras;
  bool quiet = false, no_paths = false;
};

void run_sheet_command(SheetOptions& o, const CLI::App& cmd) {
  core::init_threads();
  sheet::SheetDefinition spec = o.toml.empty() ? sheet::SheetDefinition{} : sheet::load_sheet_toml(o.toml);
  for (const auto& [key, value] : o.keys) {
    if (cmd.count("--" + key) > 0) sheet::set_sheet_key(spec, key, value, "--" + key);
  }
  if (o.no_paths) spec.paths = false;
  if (!o.loras.empty()) {
    std::string joined;
    for (const auto& l : o.loras) joined += (joined.empty() ? "" : "|") + l;
    sheet::set_sheet_key(spec, "loras", joined, "--lora");
  }
  const std::pair<sheet::AxisRole, const std::string*> axes[] = {
      {sheet::AxisRole::kX, &o.x}, {sheet::AxisRole::kY, &o.y}, {sheet::AxisRole::kZ, &o.z}, {sheet::AxisRole::kPage, &o.page}};
  for (const auto& [role, text] : axes) {
    if (!text->empty()) sheet::set_axis_flag(spec, role, *text);
  }
  const auto stats = sheet::run_sheet(spec, {!o.quiet});
  std::printf("sheet %s: %lld cells, %lld rendered, %lld reused (%.1f s)\n", spec.output_dir.c_str(),
              static_cast<long long>(stats.cells), static_cast<long long>(stats.rendered),
              static_cast<long long>(stats.reused), stats.seconds);
}

}  // namespace

void register_sheet(CLI::App& app) {
  auto o = std::make_shared<SheetOptions>();
  CLI::App* cmd = app.add_subcommand("sheet", "Render a contact sheet: LoRA files/epochs x strengths x prompts x seeds ...");
  cmd->add_option("toml", o->toml, "Sheet definition TOML (optional; flags override it)");
  // Every top-level key of the sheet TOML is a flag of the same name; the LoRAs on every cell are
  // the repeatable --lora instead of the TOML's list, and no_paths is the switch --no-paths.
  for (const core::Key<sheet::SheetDefinition>& key : sheet::sheet_keys().keys()) {
    if (key.name == "loras" || key.name == "no_paths") continue;
    if (sample::find_request_field(key.name)) continue;  // below, with the same flags as `sample`
    std::string names = key.name == "output_dir" ? "-o,--output_dir" : "--" + key.name;
    for (const std::string& alias : key.aliases) names += ",--" + alias;
    cmd->add_option(names, o->keys[key.name], key.help);
  }
  add_request_flags(*cmd, sample::ImageSettings{}, o->keys);
  cmd->add_option("--lora", o->loras, "LoRA on every cell, FILE[:strength]; repeatable");
  cmd->add_option("--x", o->x, "Columns: KIND=VALUES, e.g. \"lora=out/name-*.safetensors\"");
  cmd->add_option("--y", o->y, "Rows: KIND=VALUES, e.g. strength=0.5,0.75,1");
  cmd->add_option("--z", o->z, "Blocks: KIND=VALUES, e.g. seed=1,2");
  cmd->add_option("--page", o->page, "One grid per value: KIND=VALUES, e.g. \"prompt=a dog|a cat\"");
  cmd->add_flag("--no-paths", o->no_paths, "Leave model and LoRA file paths out of the cells' PNG text");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress bar");
  cmd->callback([o, cmd] { run_sheet_command(*o, *cmd); });
}

}  // namespace ls::cli
