"""Turn-taking for the cascading pipeline: end of turn and interruptions.

The :class:`TurnController` turns VAD and STT events into three decisions:

- **End of turn** (:mod:`.controller`): after the user stops, wait a delay
  that depends on the turn detector's probability
  (:class:`~vocalis.pipeline.config.EOUConfig`, the detector's side in
  :mod:`.detector`), then commit the transcript as a user turn. A watchdog
  decides when the STT goes quiet while the VAD still hears noise.
- **Interruption** (:mod:`.interruptions`,
  :class:`~vocalis.pipeline.config.InterruptConfig`): user speech that lasts
  long enough, or enough words, or a stop phrase, cuts the agent off;
  backchannels ("yeah") never do.
- **False interruption**: in hybrid mode the agent first *pauses*; if no
  words follow (a cough, a door) or only a backchannel, it resumes.

Nothing recognised is lost (:mod:`.segments`): every speech segment the
recogniser still owes a final for is kept in order, the end of turn waits
for those finals (up to ``stt_timeout``), and a final that arrives after its
turn was committed starts, or joins, the next turn. A turn committed from an
interim remembers the words it took, so the segment's final adds only the
rest.

The controller sees its session only through a
:class:`~vocalis.pipeline.ports.TurnHost`.
"""

from vocalis.pipeline.turn_taking.controller import TurnController

__all__ = ["TurnController"]
