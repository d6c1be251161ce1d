"""The local fake of every service tradecycle talks to (see ``core``)."""

from .core import *  # noqa: F401,F403
from .core import LLAMACPP_MODEL_ID, LLM_FLAVORS, LLM_WRAPS, OPENAI_INSUFFICIENT_QUOTA, FakeServices, main  # noqa: F401
