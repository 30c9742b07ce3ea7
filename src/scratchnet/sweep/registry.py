"""The end of a sweep: each condition's best run (the report's named best) logged as an
MLflow model, once, and registered as a version of ``tracking.registered_model`` with the
alias ``best`` + its condition (``best-noise-0_06``: MLflow's aliases allow no '.'), moved to
the newest winner. A run registered before (a rerun of a finished sweep) is left as it is."""

from __future__ import annotations

from ..nn.training import initial_state
from ..report import Report, condition_slug, outcome_tag, true_mse_words
from ..report.tables import setting_words
from ..reproduce import config_from_params
from ..tracking import models
from ..tracking.store import with_retry


def alias_for(condition: dict) -> str:
    """{'data.noise': 0.06} -> 'best-noise-0_06'; {} -> 'best'."""
    return "best" + condition_slug(condition).replace(".", "_")


def register_winners(client, uri: str, exp_id: str, report: Report, name: str
                     ) -> tuple[dict[str, str], list[str]]:
    """Log and register each winner; (tags for the parent run, one line per winner)."""
    tags, lines = {}, []
    for winner in report.winners():
        run = with_retry(client.get_run, winner.run_id)
        curve, _ = initial_state(config_from_params(winner.run_id, run.data.params))
        model_uri = models.log_network(client, uri, exp_id, winner.run_id, curve.y_low,
                                       curve.y_span)
        where = setting_words(winner.row, report.design.conditions)
        alias = alias_for(winner.condition)
        version, new = models.register(client, name, model_uri, winner.run_id, alias,
                                       version_tags(report, winner, where),
                                       description(report, winner, where))
        tags[outcome_tag(winner.condition, "model")] = f"models:/{name}/{version}"
        tags[outcome_tag(winner.condition, "model_alias")] = alias
        at = f" at {where}" if where else ""
        lines.append(f"[mlflow] best run{at} {winner.run_id}: " + (
            f"registered as {name} version {version}, alias @{alias}"
            if new else f"already {name} version {version} (registered before; left as is)"))
    return tags, lines


def version_tags(report: Report, winner, where: str) -> dict[str, str]:
    """Which sweep and condition the version won, its true_mse and whether others tie."""
    row = winner.row
    return {models.TAG_SWEEP: report.parent_run_id, models.TAG_CONDITION: where,
            models.TAG_SETTING: setting_words(row, report.design.choices),
            models.TAG_TRUE_MSE: true_mse_words(row),
            models.TAG_TIED: str(winner.tied)}


def description(report: Report, winner, where: str) -> str:
    at = f" at {where}" if where else ""
    ties = (f"{winner.tied} other settings are tied with it" if winner.tied
            else "no other setting is tied with it")
    return (f"Best{at} of the sweep '{report.name}' (parent run {report.parent_run_id}): "
            f"{setting_words(winner.row, report.design.choices)}, true_mse (geometric mean, "
            f"95% t interval on the log scale) {true_mse_words(winner.row)}; {ties}.")
