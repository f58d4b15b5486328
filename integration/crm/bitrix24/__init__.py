"""Bitrix24: call activities through the portal's inbound webhook (telephony.externalcall.*)."""
