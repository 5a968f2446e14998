"""The till's sentences, translated: what the assistant can say aloud for each refusal."""

from __future__ import annotations

from collections.abc import Callable

from publisher.shop.redeem import Problem, Reason


def sentence(problem: Problem, gettext: Callable[[str], str]) -> str:
    texts = {
        Reason.MISTYPED: gettext(
            "This is not a complete code: codes have no 0, O, 1 or I, and the last character "
            "checks the others. Please type it again from the customer's screen."
        ),
        Reason.UNKNOWN: gettext("There is no such code. Please check it with the customer."),
        Reason.OTHER_STORE: gettext(
            "This offer is not valid in this store; it is valid at: %(stores)s."
        ),
        Reason.EXPIRED: gettext("This offer ended on %(until)s."),
        Reason.USED: gettext("This code has already been used, on %(when)s at %(store)s."),
        Reason.CODE_LIMIT: gettext("This code has been used %(uses)s times, which is its limit."),
        Reason.CUSTOMER_LIMIT: gettext(
            "This customer has already used this offer %(uses)s times, its limit."
        ),
        Reason.TOTAL_LIMIT: gettext("This offer has run out: all %(uses)s have been used."),
        Reason.REFERRAL_OFF: gettext("Referral codes are switched off in this shop's settings."),
        Reason.REFERRAL_UNKNOWN: gettext(
            "There is no such referral code. Please check it with the customer."
        ),
        Reason.REFERRAL_SAME_RECEIPT: gettext(
            "This is the receipt the referral code was given with: a customer cannot bring "
            "themselves."
        ),
        Reason.REFERRAL_SAME_CODE: gettext(
            "This is the code the referral code was given for: a customer cannot bring themselves."
        ),
        Reason.REFERRAL_SAME_PERSON: gettext(
            "This code was claimed on the same phone as the referral code's: a customer cannot "
            "bring themselves."
        ),
        Reason.REFERRAL_CAP: gettext(
            "This referral code has brought %(cap)s friends, the most one customer can bring."
        ),
    }
    return texts[problem.reason] % dict(problem.params)
