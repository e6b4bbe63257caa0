"""The model seam's own messages (the model itself is tested in test_bundled and test_training)."""

from __future__ import annotations

import pytest

from rag.embedding import Embedder


def test_a_missing_model_is_named_not_blamed_on_the_network(tmp_path):
    with pytest.raises(ValueError, match="neither a folder on this machine nor in its offline"):
        Embedder(str(tmp_path / "kein-modell")).dim
