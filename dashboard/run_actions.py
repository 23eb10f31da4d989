"""Actions on a stored run, shared by the Prune and Experiments pages: measure its speed against the dense
model, export it as a transformers folder (and download that folder as a zip)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import streamlit as st

from dashboard import charts
from dashboard.common import error_text, get_store
from pruning_core.storage.access import check_page_path


def zip_folder(folder: str | Path) -> bytes:
    """The files under `folder` as a zip, inside a top folder of the same name; weights stored as they are
    (they do not compress), the rest deflated."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            kind = zipfile.ZIP_STORED if path.suffix in (".safetensors", ".bin") else zipfile.ZIP_DEFLATED
            zf.write(path, Path(folder.name) / path.relative_to(folder), compress_type=kind)
    return buf.getvalue()


def load_snippet(folder: Path, structured: bool) -> str:
    """Python that loads an exported folder with plain transformers."""
    remote = ", trust_remote_code=True" if structured else ""
    return ("from transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
            f"folder = {str(folder)!r}\n"
            f"model = AutoModelForSequenceClassification.from_pretrained(folder{remote}).eval()\n"
            "tokenizer = AutoTokenizer.from_pretrained(folder)")


def _device(res: dict) -> str:
    return str(res["config"].get("device") or "auto")


def _fail(what: str, exc: Exception) -> None:
    """A PrunescopeError's own message, or only the kind of anything else: never a traceback."""
    st.error(error_text(what, exc))


def _check_paths(res: dict) -> None:
    """Re-pruning a stored run reads its model and task: only under the folders the page may read."""
    check_page_path(str(res["config"]["model"]))
    check_page_path(str(res["config"]["task"]))


def speed_section(res: dict, prefix: str = "run") -> None:
    """Latency and throughput of the run vs its dense model: the newest stored measurement at once, a button
    to measure (again)."""
    from pruning_core.experiments import speed

    store, key = get_store(), res["key"]
    st.markdown("#### Speed")
    measured = store.load_speed(key)
    left, right = st.columns([1, 3])
    repeats = left.number_input("Timed passes", 1, 500, speed.DEFAULT_REPEATS, key=f"{prefix}_speed_repeats",
                                help="forward passes timed per model and batch size (after 3 warm-up passes); "
                                     "the median counts")
    label = "Measure again" if measured else "Measure speed"
    if left.button(label, icon=":material/speed:", key=f"{prefix}_speed", width="stretch",
                   help="prunes the run again (deterministic), then times it and the dense model at batch 1 "
                        "(latency) and batch 32 (throughput) on the run's device; stored with the run"):
        with st.spinner("Pruning the run again, then timing it and the dense model..."):
            try:
                _check_paths(res)
                speed.measure_run(key, store, device=_device(res), repeats=int(repeats), recompute=True)
            except Exception as exc:  # noqa: BLE001 - a demo shows the message, never a traceback
                _fail("Measuring speed", exc)
            else:
                st.rerun()  # drawn from the store, the button relabelled
    if not measured:
        right.caption("Not measured yet. This model is physically smaller (heads, neurons or channels removed): "
                      "measure to see how much faster it runs here." if charts.is_structured(res) else
                      "Not measured yet. Zeros do not make a model faster by themselves: measure to see "
                      "what this run's sparsity does to latency and throughput here.")
        return
    right.plotly_chart(charts.speed_bars(measured, res), key=f"{prefix}_speed_chart")
    when = f"measured {dt.datetime.fromtimestamp(measured['created']):%Y-%m-%d %H:%M} (stored with the run)"
    right.caption(charts.speed_caption(measured, res) + f" Median of {measured['repeats']} passes in "
                  f"{measured.get('dtype', 'float32')}, {when}.")


def export_section(res: dict, prefix: str = "run") -> None:
    """Export the run as a transformers folder under the store's export root, show how to load it, offer it
    as a zip download."""
    from pruning_core.experiments import export

    store, key = get_store(), res["key"]
    root = export.default_root(store)
    folder = root / key
    done = (folder / "prunescope.json").is_file()
    st.markdown("#### Export")
    left, right = st.columns([1, 3])
    label = "Export again" if done else "Export model"
    if left.button(label, icon=":material/output:", key=f"{prefix}_export", width="stretch",
                   help=f"prunes the run again (deterministic), checks it against the stored run and writes "
                        f"model, config and tokenizer to {folder}"):
        with st.spinner("Pruning the run again, checking it against the store, writing the folder..."):
            try:
                _check_paths(res)
                export.export_run(key, store, device=_device(res), root=root, force=done)
            except Exception as exc:  # noqa: BLE001
                _fail("Export", exc)
            else:
                st.rerun()
    if not done:
        right.caption(f"Writes a folder under `{root}` that loads with plain `transformers`"
                      + (" (physically smaller: heads, neurons or channels removed)." if charts.is_structured(res)
                         else " (the pruned weights are stored as zeros)."))
        return
    right.success(f"Exported to `{folder}`", icon=":material/folder:")
    right.code(load_snippet(folder, charts.is_structured(res)), language="python")
    left.download_button("Download (zip)", data=lambda: zip_folder(folder), file_name=f"prunescope_{key}.zip",
                         mime="application/zip", icon=":material/folder_zip:", key=f"{prefix}_zip",
                         width="stretch", help="the exported folder as one zip file")
