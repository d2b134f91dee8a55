"""Which account may use which domain: the operator's rules in ``mailstate.yaml``.

A domain file is written by a customer, so its own ``account:`` proves nothing: the operator
assigns domains to accounts (``accounts.NAME.domains``: a name, or ``*.name`` for every name
under it), and a file may claim only a domain and domain aliases that its account was given.
That keeps gmail.com, another customer's domain and another customer's plan out of reach.
Lookups are by name and by each parent suffix, so checking is linear in the number of files.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from mailstate.schema import Account


@dataclass(frozen=True)
class Owners:
    """The accounts whose rules match one domain, with the rule that matched for each."""

    name: str
    rules: dict[str, str]  # account -> the rule that gives it the domain


class Ownership:
    """An index of the operator's domain rules."""

    def __init__(self, accounts: dict[str, Account]) -> None:
        self.exact: dict[str, set[str]] = defaultdict(set)
        self.under: dict[str, set[str]] = defaultdict(set)
        self.rules = {name: account.domains for name, account in accounts.items()}
        for name, account in accounts.items():
            for rule in account.domains:
                if rule.startswith("*."):
                    self.under[rule[2:]].add(name)
                else:
                    self.exact[rule].add(name)

    def owners(self, domain: str) -> Owners:
        found = {account: domain for account in self.exact.get(domain, ())}
        labels = domain.split(".")
        for i in range(1, len(labels)):
            suffix = ".".join(labels[i:])
            for account in self.under.get(suffix, ()):
                found.setdefault(account, f"*.{suffix}")
        return Owners(domain, found)

    def problem(self, account: str, domain: str) -> str | None:
        """Why `account` may not use `domain` (naming the rules), or None when it may."""
        owners = self.owners(domain)
        if account in owners.rules and len(owners.rules) == 1:
            return None
        if len(owners.rules) > 1:
            listed = ", ".join(f"{a} ({r})" for a, r in sorted(owners.rules.items()))
            return (f"{domain} is assigned to more than one account in mailstate.yaml: "
                    f"{listed}; the operator must give it to one")
        rules = self.rules.get(account) or []
        given = (f"accounts.{account}.domains: {', '.join(rules)}" if rules else
                 f"account {account!r} has no `domains:`")
        return (f"{domain} is not a domain of account {account!r} in mailstate.yaml "
                f"({given}); the operator assigns domains to accounts there")
