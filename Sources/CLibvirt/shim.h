#ifndef STRATUS_CLIBVIRT_SHIM_H
#define STRATUS_CLIBVIRT_SHIM_H

#include <stddef.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static void stratus_virt_ignore_error(void *userData, virErrorPtr error) {
    (void)userData;
    (void)error;
}

/// Replaces libvirt's default handler (which prints to stderr) with one that prints nothing;
/// errors are read with virGetLastErrorMessage / virGetLastError instead.
static inline void stratus_virt_silence_errors(void) {
    virSetErrorFunc(NULL, stratus_virt_ignore_error);
}

#endif
