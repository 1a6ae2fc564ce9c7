#ifndef STRATUS_CLDAP_SHIM_H
#define STRATUS_CLDAP_SHIM_H

#include <stddef.h>
#include <sys/time.h>
#include <lber.h>
#include <ldap.h>

#endif
