"""`symprop train`: a CSV in, a model trained by its generated NumPy module out.

The data is read with the csv module and checked cell by cell, so a bad file gets a one-line
error that names the line and the column. Features are standardized (the means and standard
deviations are saved with the parameters), a held-out share is kept aside, and training runs the
generated module's own `train`, which is torch.optim.SGD over DataLoader-style minibatches.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .declare.model import Model
from .errors import SymPropError


@dataclass
class Dataset:
    x: np.ndarray  # (rows, inputs), float64
    t: np.ndarray  # (rows,) int64 class indices, or (rows, outputs) float64
    feature_names: list[str]
    target_names: list[str]
    classes: list[str] | None = None  # class labels written as names: class i is classes[i]


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV file, blank lines skipped."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise SymPropError("no such file", str(path)) from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SymPropError(f"cannot be read as CSV: {error}", str(path)) from None
    if not rows:
        raise SymPropError("is empty", str(path))
    return [name.strip() for name in rows[0]], rows[1:]


def _shapes(model: Model) -> str:
    return ", ".join("(" + ", ".join(str(d) for d in shape[1:]) + ")" for shape in data_inputs(model).values())


def load_csv(path: Path, model: Model, target_columns: tuple[str, ...] = ()) -> Dataset:
    """Rows of numbers under a header; the target is the last column unless named."""
    if model.index_ranges:
        raise SymPropError("a token model (vocabulary in its spec) trains on text: symprop train --text FILE",
                           str(path))
    if any(len(shape) != 2 for shape in data_inputs(model).values()):
        if model.sequence is None:  # images: each sample's array
            raise SymPropError("a CSV holds one row of numbers per sample, and this model takes arrays of shape "
                               f"{_shapes(model)}: give images as an .npz with x and labels", str(path))
        raise SymPropError("symprop train reads one row per sample, which a sequence model (sequence = "
                           f"{model.sequence}) cannot take yet; train it from Python with the generated module's "
                           "train()", str(path))
    header, body = read_csv(path)
    widths = {name: shape[1] for name, shape in data_inputs(model).items()}
    if all(_is_number(cell) for cell in header):
        raise SymPropError("line 1 holds numbers, not column names: the CSV needs a header row that names its "
                           "columns", str(path))
    if not body:
        raise SymPropError("has a header but no rows of data", str(path))
    for name in target_columns:
        if name not in header:
            raise SymPropError(f"no column named {name!r}; the columns are {', '.join(header)}", str(path))
    targets = list(target_columns) or [header[-1]]
    features = [name for name in header if name not in targets]
    if len(features) != sum(widths.values()):
        takes = f"inputs = {model.inputs}" if len(widths) == 1 else \
            f"{sum(widths.values())} inputs ({', '.join(f'{k} {w}' for k, w in widths.items())}, in that order)"
        raise SymPropError(f"has {len(features)} feature columns ({', '.join(features)}) besides the target "
                           f"{', '.join(targets)}, but the spec takes {takes}", str(path))
    # One column of class labels for class-index targets, and for distributions given as labels (one-hot).
    labelled = model.target_kind == "index" or (
        _domain(model) == "simplex" and len(targets) == 1 and model.outputs > 1)
    width = 1 if labelled else model.outputs
    if len(targets) != width:
        raise SymPropError(f"the network has {model.outputs} outputs, so it needs {width} target columns; "
                           "name them with --target-column, once each", str(path))
    classes = None
    label_column = header.index(targets[0]) if labelled else None
    if labelled and not all(_is_number(row[label_column]) for row in body if len(row) == len(header)):
        classes = sorted({row[label_column].strip() for row in body if len(row) == len(header)})
        if len(classes) > model.outputs:
            raise SymPropError(f"column {targets[0]!r} names {len(classes)} classes ({', '.join(classes[:8])}"
                               f"{', ...' if len(classes) > 8 else ''}), more than the network's {model.outputs} "
                               "outputs", str(path))
    class_of = {name: k for k, name in enumerate(classes or ())}
    values = np.empty((len(body), len(header)))
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise SymPropError(f"line {line} has {len(row)} cells, the header has {len(header)}", str(path))
        for column, cell in enumerate(row):
            if classes is not None and column == label_column:  # a class written as its name
                values[line - 2, column] = class_of[cell.strip()]
                continue
            try:
                values[line - 2, column] = float(cell)
            except ValueError:
                raise SymPropError(f"line {line}, column {header[column]!r}: {cell.strip()!r} is not a number",
                                   str(path)) from None
            if not math.isfinite(values[line - 2, column]):
                raise SymPropError(f"line {line}, column {header[column]!r}: {cell.strip()!r} is not finite",
                                   str(path))
    x = values[:, [header.index(name) for name in features]]
    t = values[:, [header.index(name) for name in targets]]
    if labelled:
        labels = t[:, 0]
        bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0) | (labels >= model.outputs))
        if bad.size:
            line = int(bad[0]) + 2
            cell = body[line - 2][label_column].strip()
            raise SymPropError(f"line {line}, column {targets[0]!r}: class label {cell!r} is not one of "
                               f"0 … {model.outputs - 1}", str(path))
        labels = labels.astype(np.int64)
        t = labels if model.target_kind == "index" else np.eye(model.outputs)[labels]  # as F.one_hot does
    return Dataset(x, t, features, targets, classes)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def data_inputs(model) -> dict:
    """The inputs that data gives, {name: shape}: all but those forward draws at random (a dropout's masks), which the
    generated module's train() draws itself."""
    drawn = model.random_inputs
    return {name: shape for name, shape in model.input_shapes.items() if name not in drawn}


def with_draws(model, inputs: list, seed: int = 0) -> list:
    """`inputs` and, after them, what forward draws at random for them (a dropout's masks, kept with probability
    1 − p; noise), as the generated module's train() draws it: for scoring a model that computes in training mode."""
    rng = np.random.default_rng(seed)
    rows = len(inputs[0]) if inputs else 0
    dtype = inputs[0].dtype if inputs and np.issubdtype(inputs[0].dtype, np.floating) else np.float64
    drawn = []
    for name, kind in model.random_inputs.items():
        shape = (rows, *model.input_shapes[name][1:])
        draw = rng.random(shape) < kind[1] if kind[0] == "keep" else \
            rng.standard_normal(shape) if kind[0] == "normal" else rng.random(shape)
        drawn.append(draw.astype(dtype))
    return list(inputs) + drawn


def inputs_of(model, x: np.ndarray) -> list[np.ndarray]:
    """The feature columns split into the model's inputs, in their declared order."""
    parts, start = [], 0
    for shape in data_inputs(model).values():
        parts.append(x[:, start:start + shape[1]])
        start += shape[1]
    return parts


@dataclass
class Prepared:
    """What training needs, whatever the data was: the inputs and targets to train on and to score on, what the
    run says it trains on, and what is saved beside the parameters."""

    inputs: list
    t: np.ndarray
    held_inputs: list
    held_t: np.ndarray
    description: str
    saved: dict
    units: str = "rows"


def prepare_csv(path: Path, model, target_columns, holdout: float, seed: int, standardize: bool) -> Prepared:
    data = load_csv(path, model, target_columns)
    fit, held = split(data, holdout, seed)
    mean, std = (fit.x.mean(axis=0), fit.x.std(axis=0)) if standardize else (0.0, 1.0)
    std = np.where(std > 0, std, 1.0)
    columns = (len(data.feature_names),)
    saved = {"x_mean": np.broadcast_to(mean, columns), "x_std": np.broadcast_to(std, columns),
             "features": np.array(data.feature_names)}
    if data.classes is not None:
        saved["classes"] = np.array(data.classes)
    return Prepared(inputs_of(model, (fit.x - mean) / std), fit.t, inputs_of(model, (held.x - mean) / std), held.t,
                    f"{len(fit.x)} rows of {path} ({len(held.x)} held out)", saved)


def prepare_npz(path: Path, model, holdout: float, seed: int) -> Prepared:
    """Arrays saved by numpy.savez: `x`, one sample per row in the shape the model takes (images (rows, channels,
    height, width)), and `labels`, one class index per row, or `t`, the targets. Used as they are: no scaling."""
    names = list(data_inputs(model))
    if len(names) != 1:
        raise SymPropError(f"an .npz trains a model of one input, and this one takes {len(names)} ({', '.join(names)})",
                           str(path))
    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = dict(arrays)
    except (OSError, ValueError) as error:
        raise SymPropError(f"cannot read it as an .npz of arrays: {error}", str(path)) from None
    target_key = "labels" if "labels" in found else "t"
    if "x" not in found or target_key not in found:
        raise SymPropError(f"it needs an array x (the inputs) and an array labels (class indices) or t (targets); "
                           f"it has {', '.join(sorted(found)) or 'none'}", str(path))
    x, t = found["x"], found[target_key]
    want = tuple(model.input_shapes[names[0]][1:])
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want or len(t) != len(x):
        raise SymPropError(f"x is {tuple(x.shape)} and {target_key} {tuple(t.shape)}, where the model takes rows of "
                           f"shape {want} and one target per row", str(path))
    if model.target_kind == "index":
        classes = model.class_range[0] if model.class_range else None
        if not np.issubdtype(t.dtype, np.integer) or t.ndim != 1 or t.min() < 0 or \
                (classes is not None and t.max() >= classes):
            raise SymPropError(f"{target_key} must hold one class index per row (integers from 0), got "
                               f"{t.dtype} values from {t.min()} to {t.max()}", str(path))
        t = t.astype(np.int64)
    data = Dataset(np.asarray(x, dtype=np.float64), t, [names[0]], [target_key])
    fit, held = split(data, holdout, seed)
    return Prepared([fit.x], fit.t, [held.x], held.t,
                    f"{len(fit.x)} samples of {path} ({len(held.x)} held out)", {}, units="samples")


def token_input(model) -> str | None:
    """The name of a token model's one input, a sequence of ids (`x` in a spec, `idx` in a GPT), else None."""
    names = list(model.input_shapes)
    if len(names) == 1 and names[0] in model.index_ranges and len(model.input_shapes[names[0]]) == 2:
        return names[0]
    return None


def load_text(path: Path, model) -> tuple[str, np.ndarray]:
    """(alphabet, ids): the text's distinct characters, sorted, and the text as their indices."""
    name = token_input(model)
    if name is None:
        raise SymPropError("--text trains a token model (vocabulary = V and sequence = S in its spec); this model's "
                           "inputs are not one sequence of token ids: train it on a CSV with --data", str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SymPropError("no such file", str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SymPropError(f"cannot be read as UTF-8 text: {error}", str(path)) from None
    alphabet = "".join(sorted(set(text)))
    vocabulary, length = model.index_ranges[name], model.input_shapes[name][1]
    if len(alphabet) > vocabulary:
        raise SymPropError(f"has {len(alphabet)} distinct characters, more than the model's vocabulary = "
                           f"{vocabulary}", str(path))
    if len(text) < 4 * (length + 1):
        raise SymPropError(f"has {len(text)} characters; a model of sequence = {length} needs a few times that",
                           str(path))
    index = {c: i for i, c in enumerate(alphabet)}
    return alphabet, np.array([index[c] for c in text], dtype=np.int64)


def windows(ids: np.ndarray, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, t): windows of `length` ids every `stride`, and the same windows one character on (the next ones)."""
    starts = np.arange(0, len(ids) - length, stride)
    x = ids[starts[:, None] + np.arange(length)]
    return x, ids[starts[:, None] + np.arange(1, length + 1)]


def prepare_text(path: Path, model, holdout: float) -> Prepared:
    """Windows of the text's first part to train on (overlapping by three quarters), and of its last `holdout`
    part, apart, to score: the held-out loss per character."""
    alphabet, ids = load_text(path, model)
    length = model.input_shapes[token_input(model)][1]
    cut = len(ids) - int(round(holdout * len(ids)))
    x, t = windows(ids[:cut], length, max(length // 4, 1))
    held_x, held_t = windows(ids[cut:], length, length) if len(ids) - cut > length else (x[:0], t[:0])
    return Prepared([x], t, [held_x], held_t, f"{len(x)} windows of {length} characters of {path} ({cut:,} "
                    f"characters; {len(ids) - cut:,} held out)", {"alphabet": np.array(list(alphabet))}, "windows")


def load_trained(path: Path, model) -> tuple[dict, dict]:
    """(parameters, what was saved beside them: x_mean, x_std, features, classes or alphabet) of a .npz that
    symprop train wrote."""
    try:
        saved = dict(np.load(path))
    except (OSError, ValueError) as error:
        raise SymPropError(f"cannot be read: {error}; train the model first with symprop train", str(path)) from None
    missing = set(model.parameters) - set(saved)
    if missing:
        raise SymPropError(f"lacks the parameters {', '.join(sorted(missing))}: it is another model's", str(path))
    params = {key: saved.pop(key) for key in model.parameters}
    return params, saved


def predict(module, model, params: dict, saved: dict, path: Path) -> tuple[list[str], list[list]]:
    """(header, rows): the model's prediction for every row of a CSV, its features standardized as in training:
    the class (by name, if training named them) for a classifier, else the outputs."""
    features = [str(f) for f in saved.get("features", [])]
    header, body = read_csv(path)
    missing = [name for name in features if name not in header]
    if missing:
        raise SymPropError(f"has no column {', '.join(map(repr, missing))}, which the model was trained on",
                           str(path))
    columns = [header.index(name) for name in features]
    try:
        x = np.array([[float(row[c]) for c in columns] for row in body])
    except (ValueError, IndexError) as error:
        raise SymPropError(f"a feature cell is not a number: {error}", str(path)) from None
    outputs = module.forward(params, *inputs_of(model, (x - saved["x_mean"]) / saved["x_std"]))
    classes = [str(c) for c in saved["classes"]] if "classes" in saved else None
    if model.target_kind == "index" or (classes is not None):
        picked = outputs.argmax(axis=-1)
        return ["class"], [[classes[i] if classes else int(i)] for i in picked]
    return [f"y{i}" for i in range(outputs.shape[-1])], [[f"{v:.6g}" for v in row] for row in outputs]


def sample(module, params: dict, alphabet: str, prompt: str, length: int, temperature: float, seed: int) -> str:
    """`length` characters after `prompt`, each drawn from the model's distribution at the last position of the
    window that ends with what came before (padded on the left with the prompt's first character), over the
    characters of the text it was trained on."""
    index = {c: i for i, c in enumerate(alphabet)}
    unknown = sorted(set(prompt) - set(index))
    if unknown:
        raise SymPropError(f"the model never saw the characters {''.join(unknown)!r}", "--prompt")
    window = next(iter(module.INPUT_SHAPES.values()))[1]
    ids = [index[c] for c in prompt] or [0]
    rng = np.random.default_rng(seed)
    for _ in range(length):
        context = ([ids[0]] * window + ids)[-window:]
        logits = module.forward(params, np.array([context]))[0, -1, :len(alphabet)] / max(temperature, 1e-6)
        p = np.exp(logits - logits.max())
        ids.append(int(rng.choice(len(p), p=p / p.sum())))
    return prompt + "".join(alphabet[i] for i in ids[len(prompt) or 1:])


def split(data: Dataset, holdout: float, seed: int):
    """(train, held out), shuffled with `seed`."""
    order = np.random.default_rng(seed).permutation(len(data.x))
    cut = len(order) - int(round(holdout * len(order)))
    pick = lambda rows: Dataset(data.x[rows], data.t[rows], data.feature_names, data.target_names)  # noqa: E731
    return pick(order[:cut]), pick(order[cut:])


def _domain(model: Model) -> str:
    """What the loss's targets hold: "real", "unit" (binary labels or probabilities) or "simplex" (distributions)."""
    return getattr(model.loss, "target_domain", "real")


def score(model: Model, outputs: np.ndarray, t: np.ndarray) -> tuple[str, float]:
    """("accuracy", share right) for classifiers, ("MSE", mean squared error) otherwise."""
    if model.target_kind == "index":  # classes on the last axis; for tokens, the share of next characters guessed
        return "accuracy", float(np.mean(outputs.argmax(axis=-1) == t))
    if _domain(model) == "simplex":
        return "accuracy", float(np.mean(outputs.argmax(axis=1) == t.argmax(axis=1)))
    threshold = getattr(model.loss, "decision", None)  # a binary classifier's: 0.5 on probabilities, 0 on logits
    if threshold is not None:
        return "accuracy", float(np.mean((outputs > threshold) == (t > 0.5)))
    return "MSE", float(np.mean((outputs - t) ** 2))


def save_params(path: Path, params: dict, **extra) -> Path:
    """The trained parameters (and the feature scaling) as .npz, written atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **params, **extra)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(buffer.getvalue())
        temporary.replace(path)
    except OSError as error:
        raise SymPropError(f"cannot write: {error.strerror}", str(path)) from None
    return path


def plot_loss(history: list[float], path: Path, title: str) -> bool:
    """The loss curve as a PNG; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(6, 3.6), dpi=100)
    axes.plot(range(1, len(history) + 1), history, color="#1f77b4")
    axes.set_xlabel("epoch")
    axes.set_ylabel("mean training loss")
    axes.set_yscale("log" if min(history) > 0 and max(history) / min(history) > 20 else "linear")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, metadata={"Software": None})
    plt.close(figure)
    temporary.replace(path)
    return True
