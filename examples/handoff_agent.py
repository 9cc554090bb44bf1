"""Two agents and a handoff: a receptionist passes billing questions on.

``vocalis talk examples/handoff_agent.py --text "I have a question about my invoice"``
(or ``vocalis serve examples/handoff_agent.py``). A tool that returns an
``Agent`` hands the conversation over to it once the current utterance ends;
with ``inherit_context=True`` the new agent sees the conversation so far.
"""

from __future__ import annotations

from vocalis import Agent, function_tool


class BillingAgent(Agent):
    """Answers invoice questions; it hands back when the user is done."""

    def __init__(self) -> None:
        super().__init__(
            "You are the billing desk. Answer questions about invoices in one short "
            "spoken sentence. Use the tools; never invent amounts.",
            inherit_context=True,
        )

    async def on_enter(self) -> None:
        await self.session.say("Billing here. Which invoice is it about?")

    @function_tool
    async def invoice_total(self, invoice: str) -> str:
        """The amount due on an invoice.

        Args:
            invoice: The invoice number, e.g. "42".
        """
        return f"Invoice {invoice}: 120 euros, due on the 30th."

    @function_tool
    async def back_to_reception(self) -> Agent:
        """Hand the user back to the receptionist when their billing question is answered."""
        return Receptionist()


class Receptionist(Agent):
    """Greets the user and routes billing questions to :class:`BillingAgent`."""

    def __init__(self) -> None:
        super().__init__(
            "You are a receptionist. Answer in one short spoken sentence. For any "
            "question about invoices, payments or prices call transfer_to_billing.",
            inherit_context=True,
        )

    async def on_enter(self) -> None:
        await self.session.say("Hello, how can I help?")

    @function_tool
    async def transfer_to_billing(self) -> Agent:
        """Pass the user to the billing desk, for invoices, payments and prices."""
        return BillingAgent()


def make_agent() -> Agent:
    """The first agent of each conversation."""
    return Receptionist()
