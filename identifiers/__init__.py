"""Australian healthcare identifiers, below every app: `checks` (pure functions, no Django) and
`fields` (model fields that normalise through them). Organizations (HPI-O) and accounts (HPI-I,
prescriber, provider and AHPRA numbers, phones, dates of birth) both import them downward."""
