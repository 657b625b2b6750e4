// `lorastudio train --nproc N`: the local launcher torchrun would be. It starts N copies of this
// command line as ranks 0..N-1 of one group on this machine, with torchrun's environment (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT a free port, and
// OMP_NUM_THREADS = cores / N unless set). The ranks run in their own process group, so a Ctrl-C
// reaches them once, through the launcher, and each saves its share of the stop exactly once
// (rank 0 writes the state); they die with the launcher (PR_SET_PDEATHSIG).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace ls::cli {

/// Runs `args` (argv[0] excluded; this executable is started) as `nproc` ranks and waits for all.
/// After the first rank fails the others get `grace` to stop on their own (a rank whose peer died
/// says so itself), then SIGTERM, then SIGKILL. Returns 0 or the first failing rank's exit code
/// (130 after an interrupt: the ranks exit with it).
int launch_local_ranks(const std::vector<std::string>& args, int nproc, std::chrono::seconds grace);

/// A TCP port free on 127.0.0.1 right now (the kernel's pick), for the rendezvous.
int free_local_port();

/// This process's command line as main() received it (set_command_line), argv[0] excluded.
const std::vector<std::string>& command_line();
void set_command_line(int argc, char** argv);

}  // namespace ls::cli
