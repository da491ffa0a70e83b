"""One partition per tenant, shared by every per-tenant asset; the landing sensor adds them."""

from dagster import DynamicPartitionsDefinition

tenants = DynamicPartitionsDefinition(name="tenants")
