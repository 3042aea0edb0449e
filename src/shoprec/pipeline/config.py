"""`PipelineConfig`: the `[pipeline]` section of the configuration file.

```toml
[pipeline]
models = ["sasrec", "ease"]      # registry models used as retrievers (default: none)
item_to_item = true              # "often bought after" source
trending = true                  # time-decayed popularity source
n_candidates = 200               # per retriever
ranker = "lightgbm"              # lightgbm | weighted
vector_index = "auto"            # content search: exact | hnsw | auto (hnsw from ann_min_items)
vector_neighbours = 100          # per-item neighbour lists for content sources (0: search)
diversity = 0.0                  # default MMR knob when a request gives none
[pipeline.model_params.ease]
l2 = 200.0
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PipelineConfig:
    """Every knob of the recommendation chain, each with its default."""

    # retrievers
    models: tuple[str, ...] = ()  # registry names, e.g. ("sasrec", "ease")
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> kwargs
    item_to_item: bool = True
    item_to_item_window: int = 3  # successor positions counted per event
    item_to_item_neighbours: int = 50  # successors kept per item
    recent_items: int = 5  # latest history items that seed item-to-item and content
    trending: bool = True
    content: bool = True  # content-similarity and new-item sources when items have text/category
    content_text_backend: str = "tfidf"  # tfidf (fast) | minilm | auto
    onboarding: bool = True  # segment popularity spread across categories, for new shoppers
    trending_half_life_days: float = 7.0
    n_candidates: int = 200  # per retriever
    max_history: int = 50  # most recent items passed to models
    vector_index: str = "auto"  # content vectors: exact (scan) | hnsw (faiss graph) | auto
    ann_min_items: int = 50_000  # auto: an HNSW graph from this many items on
    # vector sources (content, new items): each item's nearest items listed at training time;
    # a request merges its recent items' lists instead of searching (0: search per request)
    vector_neighbours: int = 100
    # ranker
    ranker: str = "lightgbm"  # lightgbm | weighted
    ranker_max_users: int = 5000  # validation users used to train the ranker
    ranker_rounds: int = 100
    ranker_holdout: float = 0.2  # share of validation users kept to measure the pipeline
    source_weights: dict[str, float] = field(default_factory=dict)  # weighted ranker
    select_ranker: bool = True  # keep lightgbm / weighted / best-source-led, by validation
    # re-rankers
    exclude_seen: bool = True  # False: only purchased items are excluded
    diversity: float = 0.0  # default MMR knob
    cold_start_diversity: float = 1.0  # knob for shoppers without history
    max_per_category: int = 0  # 0: no cap
    diversity_pool: int = 5  # MMR chooses among pool * k candidates
    exploration_slots: int = 1
    exploration_min_k: int = 4
    new_item_days: float = 30.0  # items created this recently are "new"
    new_item_max_interactions: int = 2  # ...and so are items with this few interactions
    max_promoted: int = 2
    # training
    refit_full: bool = True  # refit retrievers on all data after validation
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ranker not in ("lightgbm", "weighted"):
            raise ValueError(f"pipeline.ranker: 'lightgbm' or 'weighted', got {self.ranker!r}")
        for name in ("diversity", "cold_start_diversity"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"pipeline.{name}: must be in [0, 1]")
        if self.vector_index not in ("auto", "exact", "hnsw"):
            raise ValueError(
                f"pipeline.vector_index: 'auto', 'exact' or 'hnsw', got {self.vector_index!r}"
            )
        if self.vector_neighbours < 0:
            raise ValueError("pipeline.vector_neighbours: must be >= 0")
        if self.n_candidates < 1:
            raise ValueError("pipeline.n_candidates: must be >= 1")
