"""Neural networks on patches: HardNet (descriptor), AffNet/OriNet (shape, orientation), the batched
runner they share (:mod:`hardmatch.nets.runner`) and the weights registry (:mod:`hardmatch.nets.weights`).

Nothing is imported here: torch loads only with the module that needs it (``hardmatch.nets.hardnet``).
"""
