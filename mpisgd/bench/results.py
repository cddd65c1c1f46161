"""``docs/results.md`` from the suite's JSON reports (:mod:`.suite`): tables, plots, verdicts.

Every figure in the page comes from a report under the suite's output
folder; the page says which command produced it, whether the emulated
links were faithful during the run, and, for each paper claim, whether the
measured ratio reaches the claim. The hand-written interpretation (what we
believe explains a claim that was not reproduced) lives in
``docs/results-notes.md`` and is appended as it is.
"""

import json
from pathlib import Path

from .results_divshare import step_spread, sweep_section
from .results_format import fmt as _fmt
from .results_format import table as _table
from .results_sections import leaders_section

# experiment -> [(claim, ratio, goal, "at least" | "above" | "at most")]
CLAIMS = {
    "cocod-1g": [("CoCoD-SGD reaches the target accuracy at least 2x sooner than synchronous SGD at "
                  "1 Gbit/s + 1 ms (paper: CoCoD-SGD 2-3x faster than sync)", "tta_sync_over_cocod", 2.0, "at least")],
    "cocod-balanced": [("with one all-reduce costing about one local step, CoCoD-SGD's time per iteration is "
                        "within 1.2x of max(compute, all-reduce / period)", "iter_cocod_over_bound", 1.2, "at most"),
                       ("and it reaches the target at least 2x sooner than sync", "tta_sync_over_cocod", 2.0,
                        "at least")],
    "cocod-100m": [("the same at 100 Mbit/s + 5 ms (the paper's 2-3x; no goal set there)", "tta_sync_over_cocod",
                    2.0, "at least")],
    "divshare": [("DivShare reaches the target at least 2x sooner than AD-PSGD with one straggler host "
                  "(paper: up to 3.9x)", "tta_adpsgd_over_divshare", 2.0, "at least")],
    "divshare-slow-node": [("the same when the straggler host also computes 4x slower", "tta_adpsgd_over_divshare",
                            2.0, "at least")],
    "divshare-10m": [("the same with a much slower straggler (10 Mbit/s + 20 ms, 4x slower steps)",
                      "tta_adpsgd_over_divshare", 2.0, "at least")],
    "asyvrsc": [("AsyVRSC-Distributed with 2 workers reaches the relative gap 1e-8 at least 1.8x sooner than with "
                 "1 (paper: linear speedup under bounded delays)", "speedup_distributed_2_workers", 1.8, "at least"),
                ("AsyVRSC-Shared with 2 ranks the same", "speedup_shared_2_workers", 1.8, "at least")],
    "failures": [("asynchronous EASGD reaches the target accuracy at least 1.5x sooner than synchronous EASGD "
                  "with one straggler host (100 Mbit/s + 5 ms)", "tta_sync_over_async", 1.5, "at least"),
                 ("with a worker fallen silent, dynamic weighting ends with a more accurate center than plain "
                  "weighting (w_i = 1; in points)", "accuracy_dw_minus_plain", 0.0, "above")],
    "leaders-4": [("LSGD reaches the target accuracy no later than EASGD on the CNN with 4 hosts (paper: LSGD "
                   "\"compares favorably\" with EASGD; no number read)", "tta_easgd_over_lsgd", 1.0, "at least")],
    "leaders-8": [("the same with 8 hosts, two groups of 4 (multi-leader)", "tta_easgd_over_lsgd", 1.0, "at least")],
    "cocod-cnn-1g": [("CoCoD-SGD reaches the target no later than Local SGD on the CNN at 1 Gbit/s + 1 ms (the paper "
                      "compares them only in its timing figure; no number against Local SGD read)",
                      "tta_local_over_cocod", 1.0, "at least"),
                     ("and at least 2x sooner than sync (paper: 2-3x)", "tta_sync_over_cocod", 2.0, "at least")],
    "cocod-cnn-100m": [("the same at 100 Mbit/s + 5 ms: no later than Local SGD", "tta_local_over_cocod", 1.0,
                        "at least"), ("and at least 2x sooner than sync", "tta_sync_over_cocod", 2.0, "at least")],
}


# experiment -> the regime it runs in, next to the paper's (one sentence each)
SWEEP_REGIME = ("here: 16 emulated hosts on one 2-core machine, links 100 Mbit/s + 5 ms, the last 2 hosts "
                "(0.12 of 16) at 20 Mbit/s + 5 ms, {data}, a small model, J in {{3, 6, 9, 12}} and Ω in "
                "{{1, 2, 10}}, one time budget per run; the paper: 60 nodes, 7 of them at about 1/5 of the "
                "bandwidth, CIFAR-10 and MovieLens, non-IID, J and Ω from its artifact (ALGORITHMS.md §8)")
REGIMES = {
    "leaders-4": "here: 4 emulated hosts at 1 Gbit/s + 1 ms on 2 cores, a CNN of 13,706 parameters on digits "
                 "(8x8 images, 1,438 training images), batch 32 per rank, lr 0.1, one group (a single leader), "
                 "tau_G 4, tau 1, c1 = c2 = 0.1, EASGD beta 0.43 every 4 steps, the workers' own models evaluated "
                 "mid-run; the paper: CNN7 and ResNet20 on CIFAR-10 with 4 workers (one node of 4 GPUs), batch 128, "
                 "tau_G swept over 4, 16, 64 and lr over 0.1, 0.01, 0.001, test error of the leader or center "
                 "against wall-clock time.",
    "leaders-8": "here: 8 emulated hosts at 1 Gbit/s + 1 ms on 2 cores (4 ranks per core), the same CNN and "
                 "settings, two groups of 4 (multi-leader); the paper: 16 workers (4 nodes of 4 GPUs) with CNN7 "
                 "and ResNet20 on CIFAR-10 (it reports 4 and 16 workers, not 8).",
    "cocod-cnn-1g": "here: 4 emulated hosts at 1 Gbit/s + 1 ms on 2 cores, a CNN of 13,706 parameters on digits, "
                    "batch 32, period 4, lr 0.05; the paper: ResNet18 and VGG16 on CIFAR-10 with 16 GeForce GTX "
                    "1080Ti GPUs (its period and network not read).",
    "cocod-cnn-100m": "here: the same at 100 Mbit/s + 5 ms, where one all-reduce costs several local steps; the "
                      "paper: as above (16 GPUs, CIFAR-10, ResNet18 and VGG16).",
    "divshare-sweep-digits-iid": SWEEP_REGIME.format(data="digits split IID"),
    "divshare-sweep-digits-dirichlet": SWEEP_REGIME.format(data="digits split by Dirichlet(0.1) over the classes"),
    "divshare-sweep-movielens-iid": SWEEP_REGIME.format(data="MovieLens ratings split IID"),
    "divshare-sweep-movielens-dirichlet": SWEEP_REGIME.format(
        data="MovieLens ratings split by Dirichlet(0.1) over the rating values"),
    "divshare-sweep-digits-dirichlet-60": SWEEP_REGIME.replace("16 emulated hosts", "60 emulated hosts (30 ranks per "
                                                               "core)").replace("the last 2 hosts (0.12 of 16)", "the "
                                                               "last 7 hosts (0.12 of 60)").replace("J in {{3, 6, 9, 12}} and Ω in {{1, 2, 10}}", "J in {{3, 12}} and Ω = 2").format(
        data="digits split by Dirichlet(0.1) over the classes (24 training images per host)"),
}


def _load(out: Path, name: str, doc: Path):
    """The experiment's report from this run, else the one kept beside the page by an earlier run
    (so that ``--only`` rewrites its own sections and keeps the others)."""
    for path in (out / f"{name}.json", doc.parent / "results" / f"{name}.json"):
        if path.exists():
            return json.loads(path.read_text())
    return None


def _emulation_line(report: dict) -> str:
    emulation = report.get("emulation")
    if not emulation:
        return "Emulator report: missing."
    late = emulation["lateness_s"]
    return (f"Emulated links {'faithful' if emulation['faithful'] else '**not faithful**'}: "
            f"{emulation['packets']} packets, lateness median {_fmt(late['median'], 1e3, 2, ' ms')}, "
            f"99th percentile {_fmt(late['p99'], 1e3, 2, ' ms')}, max {_fmt(late['max'], 1e3, 2, ' ms')}.")


def _plots(doc: Path, name: str) -> list:
    """The accuracy figures of an experiment (the loss figures and a table are in its own folder)."""
    folder = doc.parent / "results" / name
    lines = [f"![{name}: {png.stem}]({png.relative_to(doc.parent).as_posix()})"
             for png in sorted(folder.rglob("*.png")) if not png.stem.startswith("loss")]
    if (folder / "results.md").exists():
        lines.append(f"Loss figures and every run: [results/{name}/results.md](results/{name}/results.md).")
    return lines


def _verdict(claim: str, key: str, goal: float, direction: str, report: dict) -> str:
    value = report["ratios"].get(key)
    if value is None:
        verdict = f"**not met**: `{key}` is missing (a target accuracy was not reached)"
    elif {"at least": value >= goal, "above": value > goal, "at most": value <= goal}[direction]:
        verdict = f"**met**: `{key}` = {value:.2f} (goal: {direction} {goal:g})"
    else:
        verdict = f"**not met**: `{key}` = {value:.2f} (goal: {direction} {goal:g})"
    return f"- Goal: {claim}. {verdict}."


def _check_section(report) -> list:
    rows = [[r["network"], r["hosts"], _fmt(r["median_s"], 1e3, 4, " ms"), _fmt(r["bandwidth_bound_s"], 1e3, 4, " ms"),
             f"{r['over_bound']:.2f}", "yes" if r["within_goal"] else "**no**",
             "yes" if r["bytes_crossed_links"] else "**no**",
             "yes" if r["emulator"] and r["emulator"]["faithful"] else "no"] for r in report["results"]]
    return _table(["link", "hosts", "Allreduce (median)", "bandwidth bound", "over bound (goal 1.0-1.5)",
                   "in goal", "bytes on tun0", "faithful"], rows)


def _training_rows(results: dict, names) -> list:
    return [[name, _fmt(results[name].get("iter_s"), 1e3, 3, " ms", missing="n/a"),
             _fmt(results[name]["time_to_accuracy_s"], 1, 3, " s"), f"{results[name]['final_accuracy']:.3f}",
             _fmt(results[name]["bytes_sent"], 1e-6, 3, " MB"), _fmt(results[name]["comm_wait_s"], 1, 3, " s"),
             step_spread(results[name])]
            for name in names]


def _training_section(name: str, report: dict) -> list:
    results = report["results"]
    config = report["config"]
    lines = [f"Target accuracy {config.get('target_accuracy')}, {config.get('ranks')} ranks, model "
             f"{config.get('model')} (hidden {config.get('hidden')}) on {config.get('dataset')}, "
             f"{config.get('repeats')} interleaved runs per algorithm (medians).", ""]
    names = [n for n in results if isinstance(results[n], dict) and "final_accuracy" in results[n]]
    lines += _table(["algorithm", "time per iteration", "time to accuracy", "final accuracy", "bytes per rank",
                     "blocked in communication", "step time per rank (min / median / max)"],
                    _training_rows(results, names))
    bound = results.get("cocod", {}).get("overlap_bound")
    if bound:
        lines += ["", f"Perfect overlap, estimated from Local SGD's run: compute {bound['compute_s_per_step'] * 1e3:.3g} "
                  f"ms per step, one all-reduce {bound['allreduce_s'] * 1e3:.3g} ms, bound "
                  f"{bound['bound_s_per_iter'] * 1e3:.3g} ms per iteration."]
    if name.startswith("divshare"):
        lines += ["", *_table(["algorithm", "delivery", "staleness"],
                              [[n, _fmt(r.get("delivery"), missing="n/a"), _fmt(r.get("staleness_s"), 1, 3, " s", missing="n/a")]
                               for n, r in results.items()])]
    ratios = ", ".join(f"`{k}` {_fmt(v, 1, 3)}" for k, v in report["ratios"].items())
    return [*lines, "", f"Ratios: {ratios}."]


def _scaling_plot(report: dict, doc: Path) -> None:
    """Time per iteration against parameters, log-log, one line per algorithm (matplotlib's Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for algorithm in report["config"]["algorithms"]:
        points = [(e["parameters"], e[algorithm]["iter_s"] * 1e3) for e in report["results"]]
        axes.plot(*zip(*points), marker="o", label=algorithm)
    axes.set(xscale="log", yscale="log", xlabel="model parameters", ylabel="time per iteration (ms)",
             title="Time per iteration against model size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    target = doc.parent / "results" / "scaling" / "iteration_time.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=100, bbox_inches="tight")


def _scaling_section(report: dict) -> list:
    algorithms = report["config"]["algorithms"]
    rows = [[f"{entry['parameters']:,}", *(_fmt(entry[a]["iter_s"], 1e3, 3, " ms") for a in algorithms),
             *(_fmt(entry[a]["bytes_per_step"], 1e-6, 3, " MB") for a in algorithms)]
            for entry in report["results"]]
    return _table(["parameters", *(f"{a} time/iter" for a in algorithms),
                   *(f"{a} bytes/step/rank" for a in algorithms)], rows)


def _asyvrsc_section(report: dict) -> list:
    config, results = report["config"], report["results"]
    size = config.get("problem_size", {})
    lines = [f"Problem `{config.get('problem')}` (N = {size.get('N')}, m = n = {size.get('m')}), eta "
             f"{config.get('eta')}, K {config.get('inner_steps')}, A {config.get('batch')}; {config.get('repeats')} "
             f"interleaved runs per variant (medians). `distributed-W`: a master and W workers (W + 1 processes "
             f"on {report.get('machine', {}).get('cpu_count', '?')} cores); `shared-W`: W ranks sharing x.", ""]
    rows = []
    for label, r in results.items():
        d = r.get("delays") or {}
        rows.append([label, _fmt(r.get("time_to_gap_s"), 1, 3, " s"), _fmt(r.get("epochs_to_gap"), 1, 3),
                     _fmt(d.get("mean"), 1, 3, missing="-"), _fmt(d.get("p95"), 1, 3, missing="-"),
                     _fmt(d.get("max"), 1, 3, missing="-"), r.get("dropped", 0)])
    lines += _table(["variant", "time to 1e-8", "epochs", "delay mean", "delay p95", "delay max", "dropped"], rows)
    ratios = ", ".join(f"`{k}` {_fmt(v, 1, 3, missing='n/a')}" for k, v in report["ratios"].items())
    return lines + ["", f"Ratios: {ratios}."]


def _privacy_section(report: dict) -> list:
    """The accuracy table (mean ± std over seeds, ε spent), the verdicts on the paper's claim, Opacus."""
    config, results = report["config"], report["results"]
    lines = [f"{config.get('ranks')} ranks, {config.get('algorithm')} with the {config.get('model')} (hidden "
             f"{config.get('hidden')}) on {config.get('dataset')}; batch {config.get('batch_size')} per rank "
             f"(Poisson), lr {config.get('lr')}, momentum {config.get('momentum')}, {config.get('epochs')} epochs, "
             f"C {config.get('dp_clip')}, r {config.get('dp_r')} (nsgd, autos, psac), delta {config.get('dp_delta'):g}, "
             f"accountant {config.get('accountant')}; seeds {config.get('seeds_used')} ({config.get('seeding')}).", ""]
    rows = [[_fmt(t["epsilon_target"], missing="none"), t["rule"],
             f"{t['accuracy_mean']:.3f} ± " + ("-" if t["accuracy_std"] is None else f"{t['accuracy_std']:.3f}"),
             _fmt(t["epsilon_spent"], 1, 4, missing="-"), _fmt(t["noise_multiplier"], 1, 4, missing="-"),
             _fmt(t["sample_rate"], 1, 3, missing="-"), t["seeds"]] for t in results["table"]]
    lines += _table(["ε target", "rule", "test accuracy (mean ± std)", "ε spent", "σ", "q", "seeds"], rows)
    lines += ["", "NSGD and Auto-S weigh a per-sample gradient of norm n by the same C/(n + r) (ALGORITHMS.md §10, "
              "r = γ = 0.01): with one seed they are the same run."]
    lines += ["", f"The paper's claim (DP-PSAC matches or beats Auto-S and NSGD), per ε: {config.get('verdict_rule')}.",
              ""]
    lines += _table(["ε", "psac minus", "mean difference (points)", "std (points)", "verdict"],
                    [[_fmt(c["epsilon_target"]), c["versus"], f"{100 * c['mean_difference']:+.2f}",
                      "-" if c["std_difference"] is None else f"{100 * c['std_difference']:.2f}", c["verdict"]]
                     for c in results["claim"]])
    opacus = results.get("opacus") or {}
    if opacus:
        lines += ["", f"Against Opacus: {config.get('opacus')}.", ""]
        lines += _table(["model", "mpisgd DP steps/s", "Opacus DP steps/s", "plain steps/s", "mpisgd over Opacus "
                         "(goal >= 1.0)", "DP over plain (mpisgd)", "accuracy mpisgd / Opacus / plain"],
                        [[m, f"{c['mpisgd']['steps_per_s']:.3g}", f"{c['opacus']['steps_per_s']:.3g}",
                          f"{c['plain']['steps_per_s']:.3g}", f"{c['steps_mpisgd_over_opacus']:.2f}",
                          f"{c['dp_over_plain_mpisgd']:.2f}", f"{c['mpisgd']['accuracy']:.3f} / "
                          f"{c['opacus']['accuracy']:.3f} / {c['plain']['accuracy']:.3f}"] for m, c in opacus.items()])
        below = report.get("below_goal") or []
        lines += ["", "- Goal: mpisgd's DP step at least as fast as Opacus's (`steps_mpisgd_over_opacus` >= 1.0). "
                  + (f"**not met**: {', '.join(below)}." if below else "**met**.")]
    return lines


TITLES = {
    "check": "0. The emulation: Allreduce against its bandwidth bound",
    "cocod-1g": "1a. CoCoD-SGD against sync and Local SGD, 1 Gbit/s + 1 ms",
    "cocod-100m": "1b. CoCoD-SGD against sync and Local SGD, 100 Mbit/s + 5 ms",
    "cocod-balanced": "1c. CoCoD-SGD when one all-reduce costs about one local step (1 Gbit/s + 1 ms, batch 256)",
    "divshare": "2. DivShare against AD-PSGD and Swift, one straggler host (100 Mbit/s + 5 ms)",
    "divshare-slow-node": "2b. The same with a slow node: the straggler host also computes 4x slower",
    "divshare-10m": "2c. A much slower straggler: 10 Mbit/s + 20 ms, 4x slower steps",
    "gossip": "3. Elastic Gossip against Gossiping SGD and all-reduce SGD: accuracy and bytes",
    "scaling": "4. Cost against model size (1 Gbit/s + 1 ms)",
    "failures": "5. Master-worker EASGD: async against sync with a straggler host, dynamic weighting against "
                "plain with a silent worker",
    "asyvrsc": "6. AsyVRSC: time to a relative gap of 1e-8 against the number of workers (one machine, no emulation)",
    "privacy": "7. Differential privacy: DP-SGD, NSGD, Auto-S and DP-PSAC at ε = 1, 3, 8, and Opacus (one machine, "
               "no emulation)",
    "leaders-4": "8a. LSGD against EASGD, sync as the reference, on the CNN: 4 hosts, 1 Gbit/s + 1 ms",
    "leaders-8": "8b. LSGD against EASGD, sync as the reference, on the CNN: 8 hosts (two groups of 4), 1 Gbit/s + 1 ms",
    "cocod-cnn-1g": "9a. CoCoD-SGD against Local SGD and sync on the CNN, 1 Gbit/s + 1 ms",
    "cocod-cnn-100m": "9b. CoCoD-SGD against Local SGD and sync on the CNN, 100 Mbit/s + 5 ms",
    "divshare-sweep-digits-iid": "10a. DivShare's J and Ω sweep, 16 hosts, 2 stragglers at 1/5 of the bandwidth: "
                                 "digits, IID",
    "divshare-sweep-digits-dirichlet": "10b. The same on digits, non-IID (Dirichlet 0.1)",
    "divshare-sweep-movielens-iid": "10c. The same on MovieLens (matrix factorization, test RMSE), IID",
    "divshare-sweep-movielens-dirichlet": "10d. The same on MovieLens, non-IID (Dirichlet 0.1 over the rating values)",
    "divshare-sweep-digits-dirichlet-60": "10e. The paper's scale where it fits: 60 hosts, 7 of them slow, digits, "
                                          "non-IID (Dirichlet 0.1)",
}


def write_results(out: Path, doc: Path, log: dict) -> None:
    lines = ["# Results: paper claims on the emulated cluster", "",
             "Generated by `make bench` (`python -m mpisgd.bench.suite`) from the JSON reports in "
             f"`{out}` (copied to `results/NAME.json`); do not edit by hand (interpretation: "
             "[results-notes.md](results-notes.md), appended below). Ratios come from runs side by side in "
             "one job; absolute times depend on this 2-core machine, which the emulator, the network stack "
             "and the ranks (4 to 16) share; each section gives the ranks' measured step times.", ""]
    machine = None
    for name, title in TITLES.items():
        report = _load(out, name, doc)
        if report is None:
            continue
        entry = log.get(name) or report.get("suite_entry", {})
        report["suite_entry"] = entry
        kept = doc.parent / "results" / f"{name}.json"  # the report itself, kept beside the page
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(report, indent=2) + "\n")
        lines += [f"## {title}", "", f"`{entry.get('command', '?')}` (status {entry.get('status', '?')}, "
                  f"{entry.get('seconds', 0):.0f} s; report: [results/{name}.json](results/{name}.json))", ""]
        if name in REGIMES:
            lines += [f"Regime: {REGIMES[name]}", ""]
        if name == "check":
            lines += _check_section(report)
        elif name == "privacy":
            lines += _privacy_section(report)
        elif name.startswith("divshare-sweep"):
            lines += [_emulation_line(report), "", *sweep_section(report)]
        elif name == "asyvrsc":
            lines += _asyvrsc_section(report)
            lines += ["", *(_verdict(*claim, report) for claim in CLAIMS.get(name, []))]
        else:
            machine = machine or report.get("machine")
            lines += [_emulation_line(report), ""]
            if name == "scaling":
                _scaling_plot(report, doc)
                lines += _scaling_section(report)
            elif name.startswith("leaders"):
                lines += leaders_section(report)
            else:
                lines += _training_section(name, report)
            lines += ["", *(_verdict(*claim, report) for claim in CLAIMS.get(name, []))]
        plots = _plots(doc, name)
        if plots:
            lines += ["", *plots]
        lines.append("")
    if machine:
        lines += ["## Machine", "", f"{machine.get('cpu_count', '?')} cores; MPI: {machine.get('mpi_library')}; "
                  f"torch {machine.get('torch')}; load average at start {machine.get('load_average_start')}.", ""]
    notes = doc.parent / "results-notes.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(lines))
