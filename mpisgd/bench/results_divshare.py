"""The DivShare sweep's sections of ``docs/results.md`` (:mod:`.results`): one table per experiment.

A ``divshare-sweep-*`` report (the ``stragglers`` benchmark with ``--peers``
and ``--fragments`` lists) holds one DivShare run per (J, Omega) next to
AD-PSGD and Swift. Each cell of the table is one DivShare variant, with its
time to the target, its final figure, and the verdict against the paper's
claim (DivShare reaches the target sooner than AD-PSGD, by up to 3.9x):
``sooner`` when ``tta_adpsgd_over_<variant>`` is above 1, or when only
DivShare reached the target within the time budget.
"""


from .results_format import fmt as _fmt
from .results_format import table


def _final(entry: dict) -> str:
    """The final figure: test RMSE for ratings, accuracy otherwise."""
    if entry.get("final_rmse") is not None:
        return f"RMSE {entry['final_rmse']:.3f}"
    return f"{entry['final_accuracy']:.3f}"


def step_spread(entry: dict) -> str:
    """The ranks' wall time per step: fastest / median / slowest rank (what each rank really got)."""
    spread = entry.get("step_s_ranks")
    if not spread:
        return "n/a"
    return " / ".join(_fmt(spread[key], 1e3, 3) for key in ("min", "median", "max")) + " ms"


def verdict(divshare, adpsgd) -> str:
    """DivShare's time to the target against AD-PSGD's (None: not reached in the budget)."""
    if divshare is None and adpsgd is None:
        return "**neither reached it**"
    if adpsgd is None:
        return "DivShare sooner (AD-PSGD did not reach it)"
    if divshare is None:
        return "**AD-PSGD sooner** (DivShare did not reach it)"
    ratio = adpsgd / divshare
    return f"DivShare sooner ({ratio:.2f}x)" if ratio > 1 else f"**AD-PSGD sooner** ({ratio:.2f}x)"


def sweep_section(report: dict) -> list:
    """The lines of one sweep experiment's section."""
    config, results, ratios = report["config"], report["results"], report["ratios"]
    target = (f"test RMSE {config['target_rmse']:g}" if config.get("target_rmse") is not None
              else f"test accuracy {config.get('target_accuracy')}")
    lines = [f"{config.get('ranks')} ranks (one emulated host each), model {config.get('model')} (hidden "
             f"{config.get('hidden')}) on {config.get('dataset')}, partition {config.get('partition')}, straggler "
             f"hosts {config.get('slow_ranks')}, time budget {config.get('time_budget')} s per run, "
             f"{config.get('repeats')} run(s) per variant (medians); target {target}.", ""]
    rows = []
    adpsgd = (results.get("adpsgd") or {}).get("time_to_accuracy_s")
    for name, entry in results.items():
        if not isinstance(entry, dict) or "final_accuracy" not in entry:
            continue
        pair = (config.get("divshare") or {}).get(name)
        rows.append([name, "-" if pair is None else pair["peers"], "-" if pair is None else pair["fragments"],
                     _fmt(entry["time_to_accuracy_s"], 1, 3, " s"), _final(entry),
                     _fmt(entry["bytes_sent"], 1e-6, 3, " MB"), step_spread(entry),
                     _fmt(entry.get("delivery"), missing="n/a"),
                     verdict(entry["time_to_accuracy_s"], adpsgd) if pair else "-",
                     _fmt(ratios.get(f"tta_swift_over_{name}"), 1, 3, missing="n/a") if pair else "-"])
    lines += table(["variant", "J", "Ω", "time to target", "final", "bytes per rank",
                    "step time per rank (min / median / max)", "delivery", "against AD-PSGD", "Swift over it"], rows)
    cells = [r for r in rows if r[1] != "-"]
    sooner = sum(r[8].startswith("DivShare sooner") for r in cells)
    ratios_vs_adpsgd = [ratios.get(f"tta_adpsgd_over_{r[0]}") for r in cells]
    best = max((v for v in ratios_vs_adpsgd if v is not None), default=None)
    lines += ["", f"- Verdict: DivShare reached the target sooner than AD-PSGD in {sooner} of {len(cells)} (J, Ω) "
              f"cells; the best ratio to AD-PSGD's time was "
              f"{_fmt(best, 1, 3, 'x', missing='none (AD-PSGD did not reach the target)' if adpsgd is None else 'none')} "
              "(the paper: up to 3.9x)."]
    return lines
