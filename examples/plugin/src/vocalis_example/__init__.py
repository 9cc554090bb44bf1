"""vocalis-example: a tone TTS and the STT that reads its tones back as text.

Both work offline without models, so together they make a real round trip
(text -> audio -> text) for trying a pipeline or a plugin's tests.
"""

from vocalis_example.stt import ExampleSTT
from vocalis_example.tts import ExampleTTS

__all__ = ["ExampleSTT", "ExampleTTS"]
