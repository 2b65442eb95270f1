"""The parts of sam2 that we call but sam2 does not promise to keep: one list, one check.

sam2 has no public API for running ``SAM2Base`` step by step with gradients (its video
predictor runs under ``torch.inference_mode``), so :mod:`sansa_probe.model` calls some of its
underscore methods and reads some of its attributes. Every such use is listed here with the
parameter names we rely on; :func:`sam2_api_mismatches` compares the list with the installed
sam2, and ``tests/test_sam2_api.py`` fails on the first difference, before any behaviour drifts.

Add a line here whenever the package starts using another sam2 internal.
"""

from __future__ import annotations

import importlib
import inspect

from sam2.modeling.sam2_base import SAM2Base

__all__ = ["SAM2BASE_METHODS", "SAM2BASE_ATTRIBUTES", "FUNCTIONS", "OUTPUT_DICT_KEYS", "sam2_api_mismatches"]

# ``SAM2Base`` methods -> the leading parameter names (after ``self``) that we pass, in order.
SAM2BASE_METHODS: dict[str, tuple[str, ...]] = {
    "forward_image": ("img_batch",),
    "_prepare_backbone_features": ("backbone_out",),
    "_forward_sam_heads": ("backbone_features", "point_inputs", "mask_inputs", "high_res_features", "multimask_output"),
    "_use_mask_as_output": ("backbone_features", "high_res_features", "mask_inputs"),
    "_encode_new_memory": ("current_vision_feats", "feat_sizes", "pred_masks_high_res", "object_score_logits", "is_mask_from_pts"),
    "_prepare_memory_conditioned_features": (
        "frame_idx", "is_init_cond_frame", "current_vision_feats", "current_vision_pos_embeds", "feat_sizes", "output_dict", "num_frames",
    ),  # fmt: skip
    "_use_multimask": ("is_init_cond_frame", "point_inputs"),
    "track_step": (
        "frame_idx", "is_init_cond_frame", "current_vision_feats", "current_vision_pos_embeds", "feat_sizes", "point_inputs",
        "mask_inputs", "output_dict", "num_frames",
    ),  # fmt: skip  (the tests compare our path with it)
}

# Attributes of a built ``SAM2Base`` read by the memory layout (:mod:`sansa_probe.model.memory`) and the model.
SAM2BASE_ATTRIBUTES: tuple[str, ...] = (
    "image_size",
    "num_maskmem",
    "maskmem_tpos_enc",
    "mem_dim",
    "use_obj_ptrs_in_encoder",
    "max_obj_ptrs_in_encoder",
    "use_signed_tpos_enc_to_obj_ptrs",
    "add_tpos_enc_to_obj_ptrs",
    "proj_tpos_enc_in_obj_ptrs",
    "obj_ptr_tpos_proj",
    "use_mask_input_as_output_without_sam",
    "image_encoder",
    "memory_attention",
    "memory_encoder",
    "sam_mask_decoder",
    "sam_prompt_encoder",
)

# Module-level functions: "module:function" -> leading parameter names.
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "sam2.modeling.sam2_utils:get_1d_sine_pe": ("pos_inds", "dim"),
    "sam2.modeling.memory_attention:MemoryAttention.forward": ("self", "curr", "memory", "curr_pos", "memory_pos", "num_obj_ptr_tokens"),
}

# The layout of the ``output_dict`` that ``_prepare_memory_conditioned_features`` reads.
OUTPUT_DICT_KEYS: tuple[str, ...] = ("cond_frame_outputs", "non_cond_frame_outputs")


def _leading(function: object, expected: tuple[str, ...], *, skip_self: bool) -> list[str]:
    names = list(inspect.signature(function).parameters)
    if skip_self and names and names[0] == "self":
        names = names[1:]
    return names[: len(expected)]


def sam2_api_mismatches(sam: object | None = None) -> list[str]:
    """Every listed sam2 internal that is missing or has other parameters, as sentences; ``[]`` when all match.

    ``sam``: a built ``SAM2Base`` whose attributes are checked too (they are set in ``__init__``).
    """
    problems: list[str] = []
    for name, expected in SAM2BASE_METHODS.items():
        method = getattr(SAM2Base, name, None)
        if method is None:
            problems.append(f"SAM2Base.{name} is gone")
            continue
        found = _leading(method, expected, skip_self=True)
        if tuple(found) != expected:
            problems.append(f"SAM2Base.{name}: expected parameters {list(expected)}, found {found}")
    for target, expected in FUNCTIONS.items():
        module_name, _, qualname = target.partition(":")
        obj: object | None = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if obj is None:
            problems.append(f"{target} is gone")
            continue
        found = _leading(obj, expected, skip_self=False)
        if tuple(found) != expected:
            problems.append(f"{target}: expected parameters {list(expected)}, found {found}")
    source = inspect.getsource(SAM2Base._prepare_memory_conditioned_features)
    for key in OUTPUT_DICT_KEYS:
        if f'"{key}"' not in source and f"'{key}'" not in source:
            problems.append(f"SAM2Base._prepare_memory_conditioned_features no longer reads output_dict[{key!r}]")
    if sam is not None:
        problems.extend(f"SAM2Base attribute {name} is gone" for name in SAM2BASE_ATTRIBUTES if not hasattr(sam, name))
    return problems
