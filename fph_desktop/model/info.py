"""What a weights file says about its model (config, preprocessing, code length, fingerprint),
kept apart from the tensors so that code which only encodes with an exported graph, or lists
models, never needs PyTorch."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .. import __version__
from .config import FPHConfig
from .preprocessing import Preprocessing


@dataclass
class WeightsInfo:
    config: FPHConfig
    preprocessing: Preprocessing
    class_names: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)
    fingerprint: str = ""
    created: str = ""
    app_version: str = __version__

    @property
    def code_bits(self) -> int:
        return self.config.code_bits

    def describe(self) -> str:
        kind = "ITQ (unsupervised)" if self.config.method == "itq" else "FPH"
        return f"{kind}, {self.config.backbone}, {self.config.code_bits} bits"

    def to_json(self) -> str:
        return json.dumps(
            {
                "config": self.config.to_dict(),
                "preprocessing": self.preprocessing.to_dict(),
                "class_names": self.class_names,
                "training": self.training,
                "fingerprint": self.fingerprint,
                "created": self.created,
                "app_version": self.app_version,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> WeightsInfo:
        data = json.loads(text)
        return cls(
            config=FPHConfig.from_dict(data["config"]),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            class_names=list(data.get("class_names", [])),
            training=dict(data.get("training", {})),
            fingerprint=data.get("fingerprint", ""),
            created=data.get("created", ""),
            app_version=data.get("app_version", ""),
        )
