"""Sections of ``docs/results.md`` beyond :mod:`.results`' own (that module is near its size limit).

``leaders_section``: the ``leaders`` benchmark (LSGD against EASGD and
sync): each algorithm's options, time per iteration, time and *epochs* to
the target (convergence per step apart from the cost of a step), final
accuracy, bytes and blocked time, then the ratios.
"""


from .results_divshare import step_spread
from .results_format import fmt as _fmt
from .results_format import table as _table


def _options(options: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in options.items()) or "-"


def leaders_section(report: dict) -> list:

    config, results = report["config"], report["results"]
    lines = [f"Target accuracy {config.get('target_accuracy')}, {config.get('ranks')} ranks, model "
             f"{config.get('model')} (hidden {config.get('hidden')}) on {config.get('dataset')}, batch "
             f"{config.get('batch_size')} per rank, lr {config.get('lr')}, momentum {config.get('momentum')} "
             f"(Nesterov {config.get('nesterov')}), weight decay {config.get('weight_decay')}, {config.get('epochs')} "
             f"epochs of {config.get('steps_per_epoch')} steps, {config.get('repeats')} interleaved runs per "
             "algorithm (medians). Mid-run evaluations (the time to accuracy) measure each rank's own model; the "
             "final accuracy is easgd's center and lsgd's global leader.", ""]
    rows = [[name, _options(r.get("options", {})), _fmt(r.get("iter_s"), 1e3, 3, " ms", missing="n/a"),
             _fmt(r["time_to_accuracy_s"], 1, 3, " s"), _fmt(r.get("epochs_to_accuracy"), 1, 3),
             f"{r['reached_target']}/{len(r['runs'])}", f"{r['final_accuracy']:.3f}",
             _fmt(r["bytes_sent"], 1e-6, 3, " MB"), _fmt(r["comm_wait_s"], 1, 3, " s"), step_spread(r)]
            for name, r in results.items()]
    lines += _table(["algorithm", "options", "time per iteration", "time to accuracy", "epochs to accuracy",
                     "runs reaching it", "final accuracy", "bytes per rank", "blocked in communication",
                     "step time per rank (min / median / max)"], rows)
    ratios = ", ".join(f"`{k}` {_fmt(v, 1, 3, missing='n/a')}" for k, v in report["ratios"].items())
    return [*lines, "", f"Ratios: {ratios}."]
