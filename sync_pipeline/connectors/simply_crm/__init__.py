"""Simply CRM (vtiger webservice) connector."""
