"""Offline resources for TextAttack 0.3.11: NLTK data, its cache, and an import that never downloads.

TextAttack's first import runs `nltk.download` for six packages (each a network call, even when the
package is present, to read NLTK's index) and some components call `nltk.download` again when built
(`WordSwapWordNet` asks for `omw-1.4`). prunescope keeps all of it local:

- a project-managed NLTK data folder (`PRUNESCOPE_NLTK_DATA`, default `<user data>/prunescope/nltk_data`)
  with an English stop-word list written from scikit-learn's `ENGLISH_STOP_WORDS`, and WordNet 3.0
  copied (not symlinked: NLTK rejects links) from Debian's `wordnet-base` + `wordnet-sense-index`
  with the standard `lexnames` table, which those packages do not ship;
- a TextAttack cache folder with TextAttack's own post-install marker, so its first import skips the
  downloads. `TA_CACHE_DIR` would also overwrite HF_HOME and XDG_CACHE_HOME for the whole process,
  so it is set only around the import and the previous values are restored;
- `nltk.download` replaced by a local check: it returns True when the package is on disk and raises
  a PrunescopeError naming the fix when it is not (never a network call).
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path

from pruning_core.core.errors import PrunescopeError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
WORDNET_FIX = "apt-get install wordnet-base wordnet-sense-index, then `prunescope setup-attacks`"
WORDNET_FILES = ("data.adj", "data.adv", "data.noun", "data.verb", "index.adj", "index.adv", "index.noun",
                 "index.verb", "adj.exc", "adv.exc", "noun.exc", "verb.exc", "index.sense")
# WordNet 3.0 lexicographer files (lexnames(5WN)): number, name, syntactic category.
LEXNAMES = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
            "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
            "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
            "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity",
            "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body",
            "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
            "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception",
            "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"]
_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
TA_MARKER = "post_install_check_3"  # textattack/shared/utils/install.py: skip `_post_install` if present


def data_root() -> Path:
    env = os.environ.get("PRUNESCOPE_NLTK_DATA")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("prunescope")) / "nltk_data"


def textattack_cache() -> Path:
    return data_root().parent / "textattack_cache"


def write_stopwords(root: Path) -> Path:
    """English stop words for NLTK (`corpora/stopwords/english`) from scikit-learn's list."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    path = root / "corpora" / "stopwords" / "english"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(w + "\n" for w in sorted(ENGLISH_STOP_WORDS)))
        tmp.replace(path)
    return path


def install_wordnet(root: Path, source: Path = DEBIAN_WORDNET) -> bool:
    """Copy WordNet 3.0 from `source` into `root/corpora/wordnet` (with `lexnames`); False if absent."""
    target = root / "corpora" / "wordnet"
    if (target / "lexnames").exists():
        return True
    if not all((source / f).is_file() for f in WORDNET_FILES):
        return False
    tmp = root / "corpora" / "wordnet.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in WORDNET_FILES:
        shutil.copyfile(source / f, tmp / f)  # real copies: NLTK rejects symlinked corpora
    (tmp / "lexnames").write_text(
        "".join(f"{i:02d}\t{n}\t{_CATEGORY[n.split('.')[0]]}\n" for i, n in enumerate(LEXNAMES)))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return True


def prepare() -> dict[str, bool]:
    """Write what the offline attacks need (idempotent); returns which resources are present."""
    root = data_root()
    try:
        write_stopwords(root)
        wordnet = install_wordnet(root)
        cache = textattack_cache()
        cache.mkdir(parents=True, exist_ok=True)
        (cache / TA_MARKER).touch()
    except OSError as exc:
        raise PrunescopeError(f"cannot write attack resources under {root} ({exc}); set PRUNESCOPE_NLTK_DATA "
                              "to a writable folder") from None
    return {"stopwords": True, "wordnet": wordnet}


def has_wordnet() -> bool:
    return (data_root() / "corpora" / "wordnet" / "lexnames").exists() or install_wordnet(data_root())


def _local_download(info_or_id=None, *args, **kwargs) -> bool:
    """Stands in for `nltk.download`: True when the package is on disk; never touches the network."""
    import nltk

    name = str(info_or_id)
    for kind in ("corpora", "taggers", "tokenizers", "misc"):
        try:
            nltk.data.find(f"{kind}/{name}")
            return True
        except LookupError:
            continue
    if name in ("omw-1.4", "omw"):  # only needed for non-English WordNets; English WordNet is enough
        return has_wordnet()
    raise PrunescopeError(f"TextAttack asked for the NLTK package '{name}', which is not installed and "
                          "prunescope never downloads at run time; use an offline recipe "
                          "(`prunescope attack --list`)")


@lru_cache(maxsize=1)
def textattack():
    """Import TextAttack without any download: NLTK data and TextAttack's cache prepared first."""
    prepare()
    import nltk

    root = str(data_root())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    nltk.download = _local_download
    # imported before TA_CACHE_DIR is set, so their cache paths stay the user's for the whole process
    import datasets  # noqa: F401
    import transformers  # noqa: F401

    saved = {k: os.environ.get(k) for k in ("TA_CACHE_DIR", "TFHUB_CACHE_DIR", "PYTORCH_TRANSFORMERS_CACHE",
                                            "HF_HOME", "XDG_CACHE_HOME", "TOKENIZERS_PARALLELISM")}
    os.environ["TA_CACHE_DIR"] = str(textattack_cache())
    try:
        import textattack as ta
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    import logging

    logging.getLogger("textattack.shared.utils.install").setLevel(logging.WARNING)
    return ta
