"""Named presets: a data protocol (pool and test sizes, initial set, budget per round,
rounds, how rounds train) with a training recipe per backend, and whether that recipe is a
from-scratch or a pretrained one. ``albench.config.resolve`` applies them; docs/presets.md
describes each and how the real-data preset's settings were measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from albench.errors import ConfigError

@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    initial: int | float  # images, or a share of the pool when < 1
    budget: int | float
    rounds: int
    train_mode: str = "warm"
    dataset_options: dict = field(default_factory=dict)  # per dataset name
    backend_options: dict = field(default_factory=dict)  # per backend name
    seeds: int = 3
    pool_subsample: int | None = None
    dataset: str | None = None  # the preset's dataset unless --dataset is given (None: shapes)
    # "scratch": the recipe trains from random initialisation; "pretrained": it is a
    # fine-tuning recipe (lower lr, short schedule, larger images) that needs local weights
    recipe: str = "scratch"
    paper_init: str | None = None  # what the published protocol's detector started from

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"Preset {self.name!r}: recipe must be one of {RECIPES}")

    def recipe_note(self) -> str:
        """One line: which recipe the preset means, and where it departs from its paper."""
        if self.recipe == "pretrained":
            return ("pretrained recipe: fine-tunes local weights (--backend-opt weights=PATH; "
                    "frcnn: weights or weights_backbone), refused without them")
        note = "from-scratch recipe: random initialisation unless --backend-opt weights=PATH"
        if self.paper_init:
            note += f"; the paper started from {self.paper_init}, so absolute AP is not the paper's"
        return note


RECIPES = ("scratch", "pretrained")
PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


register_preset(Preset(
    "smoke", "Smallest real run: 300-image shapes pool, 40 + 2 x 20 labels, few epochs "
    "(under a minute on a 2-core CPU; the starting point of the end-to-end tests).",
    initial=40, budget=20, rounds=2, train_mode="warm",
    dataset_options={"shapes": {"pool_size": 300, "test_size": 120}},
    backend_options={"yolo": {"epochs": 12, "warm_epochs": 4},
                     "frcnn": {"epochs": 1, "warm_epochs": 1}},
    seeds=2,
))
register_preset(Preset(
    "quick", "A whole AL experiment on a CPU in minutes: 1,000-image shapes pool, "
    "100 + 4 x 50 labels, warm-started rounds.",
    initial=100, budget=50, rounds=4, train_mode="warm",
    dataset_options={"shapes": {"pool_size": 1000, "test_size": 250}},
    backend_options={"yolo": {"epochs": 40, "warm_epochs": 15},
                     "frcnn": {"epochs": 4, "warm_epochs": 2}},
    seeds=3,
))
register_preset(Preset(
    "regress", "The CI regression setting: 400-image shapes pool, 50 + 2 x 25 labels, "
    "short warm-started training (about half a minute a run on a CPU).",
    initial=50, budget=25, rounds=2, train_mode="warm",
    dataset_options={"shapes": {"pool_size": 400, "test_size": 150}},
    backend_options={"yolo": {"epochs": 25, "warm_epochs": 8},
                     "frcnn": {"epochs": 1, "warm_epochs": 1}},
    seeds=3,
))

register_preset(Preset(
    "real-small", "A few hundred real images with a pretrained detector (the regime AL papers "
    "study), sized for a 2-core CPU: 20 + 4 x 20 labels, 320 px, 10 epochs at round 0 and 4 "
    "warm epochs a round at lr 0.001 (measured on BCCD: docs/presets.md). Give the data "
    "(--data-root, a VOC folder by default) and the weights (--backend-opt weights=PATH).",
    initial=20, budget=20, rounds=4, train_mode="warm", dataset="voc",
    backend_options={"yolo": {"imgsz": 320, "epochs": 10, "warm_epochs": 4, "lr": 0.001},
                     "frcnn": {"imgsz": 320, "epochs": 4, "warm_epochs": 2, "lr": 0.005}},
    seeds=5, recipe="pretrained",
))

# Published protocols (see docs/presets.md). A preset fixes the paper's data protocol; the
# detector recipe is albench's own per backend: yolo trains from initialisation (weights
# are never downloaded), hence the long schedule; frcnn gets the 26-epoch R50-FPN schedule
# with torchvision's standard proposal and RoI sampling numbers (GPU-sized).
def _paper_recipe(yolo_scale: str, frcnn_imgsz: int) -> dict:
    return {
        "yolo": {"scale": yolo_scale, "imgsz": 640, "epochs": 300, "warm_epochs": 50},
        "frcnn": {"arch": "resnet50_fpn", "imgsz": frcnn_imgsz, "batch": 8, "epochs": 26,
                  "warm_epochs": 8, "rpn_batch_size_per_image": 256,
                  "box_batch_size_per_image": 512, "rpn_post_nms_top_n_train": 2000,
                  "rpn_pre_nms_top_n_test": 1000, "rpn_post_nms_top_n_test": 1000},
    }


_VOC_0712 = {"voc": {"years": "2007,2012"}}
_VGG = "an ImageNet-pretrained VGG16 (SSD300)"
_R50 = "an ImageNet-pretrained ResNet-50 (RetinaNet R50-FPN)"
register_preset(Preset(
    "voc-ll4al", "LL4AL (CVPR'19), CDAL: voc, VOC07+12 trainval (16,551) -> VOC07 test; "
    "1,000 -> 10,000 images; AP50.",
    initial=1000, budget=1000, rounds=9, train_mode="scratch", dataset="voc",
    dataset_options=_VOC_0712, backend_options=_paper_recipe("n", 600), seeds=3,
    paper_init=_VGG,
))
register_preset(Preset(
    "voc-miaod", "MI-AOD (CVPR'21), PPAL: voc, VOC07+12 trainval -> VOC07 test; 5% -> 20% "
    "(828 + 6 x 414 images); AP50.",
    initial=0.05, budget=0.025, rounds=6, train_mode="scratch", dataset="voc",
    dataset_options=_VOC_0712, backend_options=_paper_recipe("n", 600), seeds=3,
    paper_init=_R50,
))
register_preset(Preset(
    "coco-miaod", "MI-AOD (CVPR'21), PPAL: coco, train2017 (117,266) -> val2017; 2% -> 10% "
    "(5 x 2,345 images); AP.",
    initial=0.02, budget=0.02, rounds=4, train_mode="scratch", dataset="coco",
    backend_options=_paper_recipe("s", 800), seeds=3, paper_init=_R50,
))
register_preset(Preset(
    "voc07-almdn", "AL-MDN (ICCV'21): voc, VOC07 trainval (5,011) -> VOC07 test; "
    "2,000 -> 5,000 images; AP50.",
    initial=2000, budget=1000, rounds=3, train_mode="scratch", dataset="voc",
    dataset_options={"voc": {"years": "2007"}}, backend_options=_paper_recipe("n", 600),
    seeds=3, paper_init=_VGG,
))


def require_weights(p: Preset, backend: str, options: dict) -> None:
    """A pretrained recipe from random initialisation would be a fine-tuning schedule on an
    untrained detector: refused, naming the option to give."""
    if any(v for k, v in options.items() if k.startswith("weights")):
        return
    raise ConfigError(
        f"Preset {p.name!r} is a pretrained recipe (a short fine-tuning schedule at a low "
        f"learning rate) and needs local weights for backend {backend!r}, but none were "
        "given. Pass --backend-opt weights=PATH (yolo: an ultralytics detection or pose "
        "checkpoint such as yolo11n.pt; frcnn: a detector state_dict, or weights_backbone="
        "PATH for a backbone), or use a from-scratch preset such as quick.")
