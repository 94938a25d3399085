"""The one rule-spec grammar: every command and function that takes a rule reads it here.

:func:`load_rule` turns a specification into a :class:`~metaunsup.rules.loaded.LoadedRule`
(name, configuration, one theta, the file's header). ``metaunsup evaluate --rule``,
``train --rule``, ``demo --rule``, ``study --rule``, ``validate RULE`` and
:func:`metaunsup.train` all accept the same words:

========================  =====================================================
``shipped`` (or None)     the rule file shipped with metaunsup
``PATH``                  a rule file (:mod:`metaunsup.run.rulefile`)
``WORKDIR[@STEP]``        a meta-training run: its checkpoint with the best
                          validation accuracy, or the one at STEP
``init:RULE``             where the run that made RULE started: its
                          configuration at the step-0 meta-parameters of that
                          run (the key recorded in its provenance), one theta
``untrained:RULE``        RULE's configuration at ``init_meta_params`` of the
                          key ``PRNGKey(seed)``: a fresh draw per seed, which
                          ``validate`` averages over ``--init-keys`` keys
``random-init``           ``untrained:`` of the learned rule's ``small``
                          configuration
``NAME[:k=v,...]``        a hand-designed rule (``oja``, ``sanger``, ``none``
                          for no learning, ...) with options typed by its config
========================  =====================================================

Specs whose theta depends on ``seed`` (``untrained:``, ``random-init``) are
*seeded* (:func:`is_seeded`); every other spec gives the same theta for any seed.
A path that exists as a file is always a file, whatever its name.
"""
from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import jax

from metaunsup.errors import UserError
from metaunsup.rules.base import make_rule, rule_names
from metaunsup.rules.learned import rule_config
from metaunsup.rules.loaded import PLACEHOLDER_NET, LoadedRule, RuleState, check_meta_params
from metaunsup.rules.warm_start import warm_start_meta_params
from metaunsup.run.rulefile import load_rule_file
from metaunsup.run.workdir import select_checkpoint
from metaunsup.streams import from_key_data, meta_init_key, residual_start_key
from metaunsup.values import parse_pairs

SHIPPED_RULE = "rule_small.safetensors"
SHIPPED = "shipped"
RANDOM_INIT = "random-init"
INIT_PREFIX = "init:"
UNTRAINED_PREFIX = "untrained:"


def hand_rule(spec: str) -> LoadedRule | None:
    """``NAME`` or ``NAME:key=value,...`` of a hand-designed rule, options typed and checked.

    Returns None when ``spec`` does not start with a hand-designed rule's name. Option
    values are typed by the fields of the rule's config dataclass (``oja:lr=0.01``;
    ``oja:lr=abc`` is a one-line error naming ``lr``, its value and its type).
    """
    name, sep, text = spec.partition(":")
    if name not in rule_names() or name == "learned":
        return None
    options = parse_pairs(text, what=f"rule {spec!r}") if sep else {}
    built = LoadedRule(name, options, {}, {}).for_net(PLACEHOLDER_NET)
    typed = {k: getattr(built.config, k) for k in options} if options else {}
    return LoadedRule(name, typed, {}, {})


def shipped_rule_path() -> Path:
    return Path(str(resources.files("metaunsup") / "assets" / SHIPPED_RULE))


def untrained_rule(loaded: LoadedRule, seed: int = 0) -> LoadedRule:
    """``loaded``'s configuration at ``init_meta_params(PRNGKey(seed))`` (``untrained:RULE``)."""
    rule = loaded.for_net(PLACEHOLDER_NET)
    meta = rule.init_meta_params(jax.random.PRNGKey(int(seed)))
    prov = {"meta_steps": 0, "note": f"untrained: init key {int(seed)}"}
    return LoadedRule(loaded.name, loaded.config, meta, {"provenance": prov})


def random_init_rule(seed: int = 0, config: str = "small") -> LoadedRule:
    """The learned rule with freshly initialised (not meta-trained) meta_params."""
    cfg = dataclasses.asdict(rule_config(config))
    return untrained_rule(LoadedRule("learned", cfg, {}, {}), seed)


def _start_key(prov: dict):
    """The key a run drew its step-0 meta-parameters with, from a rule file's provenance.

    Rule files record it (``meta_init_key``). Older files record only the seed: a
    gradient run drew it from :func:`metaunsup.streams.meta_init_key`, an evolution
    strategy (whose files carry ``theta``) from ``PRNGKey(seed)`` (or ``init_key``).
    """
    if prov.get("meta_init_key") is not None:
        return from_key_data(prov["meta_init_key"])
    run = prov.get("config") or {}
    init_key = int(run.get("init_key", -1))
    if "theta" in prov:
        return residual_start_key(prov["seed"], init_key)
    return meta_init_key(prov["seed"], init_key)


def initial_rule(loaded: LoadedRule) -> LoadedRule:
    """The untrained starting point of a meta-trained rule: its run's step 0 (``init:RULE``).

    The rule's configuration at ``init_meta_params`` of the key its run started from
    (recorded in the provenance, :func:`_start_key`; warm-started runs: with the
    warm-start file's parts copied in, as the trainer did). One fixed theta, so
    "rule vs its initialisation" compares the run's end with its own start.
    """
    if loaded.name != "learned":
        raise UserError(f"{INIT_PREFIX}RULE: {loaded.name!r} is hand-designed; it has no "
                        "untrained initialisation")
    prov = loaded.header.get("provenance", {})
    if not isinstance(prov.get("seed"), int):
        raise UserError(f"{INIT_PREFIX}RULE: the rule file records no meta-training seed")
    rule = loaded.for_net(PLACEHOLDER_NET)
    meta = rule.init_meta_params(_start_key(prov))
    warm = (prov.get("config") or {}).get("warm_start") or ""
    if warm:
        source = load_rule(warm)
        meta = warm_start_meta_params(rule.config, meta, source.for_net(rule.net).config,
                                      source.meta_params)
    note = f"untrained: step 0 of the run (seed {prov['seed']}) that made this rule"
    header = {**loaded.header, "provenance": {**prov, "meta_steps": 0, "note": note}}
    return LoadedRule(loaded.name, loaded.config, meta, header)


def workdir_rule(workdir: str | Path, step: int | None = None) -> LoadedRule:
    """The rule of one kept checkpoint of a meta-training run (``WORKDIR[@STEP]``).

    The checkpoint is chosen on the run's validation split
    (:func:`metaunsup.run.workdir.select_checkpoint`); the rule is the one its
    ``config.json`` names, configured as the run configured it.
    """
    sel = select_checkpoint(workdir, step=step)
    try:
        name, options = sel.config["rule"], dict(sel.config["rule_options"])
        rule = make_rule(name, PLACEHOLDER_NET, config=sel.config["rule_config"], **options)
    except (KeyError, TypeError) as e:
        raise UserError(f"{workdir}/config.json: no rule settings ({e})") from None
    cfg = getattr(rule, "config", None)
    cfg = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {}
    meta = sel.tree["meta_params"]
    check_meta_params(f"{workdir} (checkpoint of step {sel.step})", name, cfg, meta)
    prov = {"workdir": str(workdir), "recipe": sel.config.get("name"),
            "seed": sel.config.get("seed"), "meta_steps": sel.step,
            "selected_by": "val_accuracy" if step is None else "step",
            "val_accuracy": sel.val_accuracy, "config": sel.config}
    return LoadedRule(name, cfg, jax.tree_util.tree_map(jax.numpy.asarray, meta),
                      {"rule": name, "rule_config": cfg, "provenance": prov})


def _workdir_spec(text: str) -> tuple[str, int | None] | None:
    """``(workdir, step)`` of ``WORKDIR`` or ``WORKDIR@STEP``, or None if not a folder."""
    path_part, at, step_text = text.rpartition("@")
    if at and Path(path_part).is_dir():
        try:
            return path_part, int(step_text)
        except ValueError:
            raise UserError(f"rule {text!r}: expected WORKDIR@STEP with an integer step") from None
    return (text, None) if Path(text).is_dir() else None


def is_seeded(spec) -> bool:
    """Whether the theta of ``spec`` depends on ``load_rule``'s ``seed`` (module doc)."""
    text = str(spec) if isinstance(spec, (str, Path)) else ""
    if Path(text).is_file():
        return False
    return text == RANDOM_INIT or text.startswith(UNTRAINED_PREFIX)


def _file_rule(path: Path) -> LoadedRule:
    meta_params, header = load_rule_file(path)
    name = str(header.get("rule", "learned"))
    config = dict(header.get("rule_config", {}))
    check_meta_params(path, name, config, meta_params)
    meta_params = jax.tree_util.tree_map(jax.numpy.asarray, meta_params)
    return LoadedRule(name, config, meta_params, header)


def load_rule(path: str | Path | LoadedRule | None = None, *, seed: int = 0) -> LoadedRule:
    """The rule a specification names (module doc); default: the shipped rule.

    Args:
      path: a rule spec (the table in the module doc), a rule file path, None for
        the shipped rule, or a :class:`LoadedRule` (returned as is).
      seed: the key of seeded specs (``untrained:RULE``, ``random-init``).

    Returns:
      A :class:`LoadedRule`; ``.init``/``.update`` apply it to a network,
      ``.for_net(spec)`` gives the :class:`~metaunsup.rules.base.UpdateRule`.

    Raises:
      UserError: an unknown spec, a missing or corrupt file, or one whose tensors
        (names, shapes, dtypes) do not match the rule its header describes.
    """
    if isinstance(path, LoadedRule):
        return path
    if path is not None and not isinstance(path, (str, Path)):
        raise UserError(f"a rule is a file path, a rule name or a LoadedRule, got "
                        f"{type(path).__name__}")
    text = SHIPPED if path is None else str(path)
    if not text.strip():
        raise UserError("empty rule specification")
    if Path(text).is_file():
        return _file_rule(Path(text))
    if text == SHIPPED:
        if not shipped_rule_path().is_file():
            raise UserError("no rule is shipped with this installation; pass --rule PATH "
                            "(a rule.safetensors from 'metaunsup meta-train')")
        return _file_rule(shipped_rule_path())
    if text == RANDOM_INIT:
        return random_init_rule(seed)
    if text.startswith(INIT_PREFIX):
        return initial_rule(load_rule(text[len(INIT_PREFIX):]))
    if text.startswith(UNTRAINED_PREFIX):
        return untrained_rule(load_rule(text[len(UNTRAINED_PREFIX):]), seed)
    run = _workdir_spec(text)
    if run is not None:
        return workdir_rule(*run)
    if text == "learned":
        raise UserError("'learned' needs meta-parameters: pass a rule file, or "
                        f"{RANDOM_INIT!r} for its untrained initialisation")
    hand = hand_rule(text)
    if hand is not None:
        return hand
    raise UserError(f"{text}: no such rule file, workdir or rule spec (specs: {SHIPPED}, "
                    f"{RANDOM_INIT}, {INIT_PREFIX}RULE, {UNTRAINED_PREFIX}RULE, or a "
                    f"hand-designed rule: {', '.join(n for n in rule_names() if n != 'learned')})")


__all__ = ["INIT_PREFIX", "LoadedRule", "RANDOM_INIT", "RuleState", "SHIPPED",
           "UNTRAINED_PREFIX", "check_meta_params", "hand_rule", "initial_rule", "is_seeded",
           "load_rule", "random_init_rule", "shipped_rule_path", "untrained_rule",
           "workdir_rule"]
