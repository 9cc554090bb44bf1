"""One conversation: the session, its agent, speech queue, wake-up, limits and jobs."""
