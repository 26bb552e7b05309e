# install() rules and Debian packages (CPack DEB) for the three binaries.
#
#   cmake --build build && cpack --config build/CPackConfig.cmake -B pkgs
#
# makes three packages, one per component:
#   rcptguardd         the server, its systemd units (rcptguardd,
#                      rcptguard-snapshot service and timer), sysusers.d and
#                      tmpfiles.d snippets, /etc/rcptguard/rcptguard.textproto
#                      (serves the bundled sample until edited), the sample
#                      directory under /usr/share/rcptguard/examples
#   rcptguard          the CLI (snapshot builds, checks), the documentation
#                      in /usr/share/doc/rcptguard
#   rcptguard-postfix  the Postfix adapter, its unit and sysusers.d snippet,
#                      /etc/rcptguard/postfix.conf
# each with its man page and bash completion. Depends come from
# dpkg-shlibdeps; rcptguardd depends on rcptguard of the same version (the
# snapshot timer runs the CLI; the docs live there). The maintainer scripts
# (deploy/debian/*.in) create the system users with systemd-sysusers (or
# useradd) and never start a service on a first install, nor touch systemd
# when it is not running (chroots, image builds).
#
# Installing needs the binaries built already (`install` does not build
# everything, the tests and benchmarks included: CMAKE_SKIP_INSTALL_ALL_DEPENDENCY).
# tests/package/package_test.py builds, installs and removes the packages.

include(GNUInstallDirs)
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

# The packages install under /usr whatever the build's prefix.
if(CPACK_PACKAGING_INSTALL_PREFIX)
  set(_rg_pkg_prefix "${CPACK_PACKAGING_INSTALL_PREFIX}")
else()
  set(_rg_pkg_prefix "/usr")
endif()
set(_rg_unit_rel "lib/systemd/system")
set(_rg_sysusers_rel "lib/sysusers.d")
set(_rg_tmpfiles_rel "lib/tmpfiles.d")
set(_rg_doc_rel "${CMAKE_INSTALL_DATAROOTDIR}/doc/rcptguard")
set(_rg_share_rel "${CMAKE_INSTALL_DATAROOTDIR}/rcptguard")
set(_rg_completion_rel "${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions")
# /etc even when the prefix is /usr (packages) or /usr/local.
set(_rg_etc "/etc/rcptguard")

# ---- server: rcptguardd ----
install(TARGETS rcptguardd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT server)
install(FILES deploy/systemd/rcptguardd.service
              deploy/systemd/rcptguard-snapshot.service
              deploy/systemd/rcptguard-snapshot.timer
        DESTINATION ${_rg_unit_rel} COMPONENT server)
install(FILES deploy/systemd/rcptguard.sysusers.conf
        DESTINATION ${_rg_sysusers_rel} RENAME rcptguard.conf
        COMPONENT server)
install(FILES deploy/systemd/rcptguard.tmpfiles.conf
        DESTINATION ${_rg_tmpfiles_rel} RENAME rcptguard.conf
        COMPONENT server)
install(FILES deploy/debian/rcptguard.textproto DESTINATION ${_rg_etc}
        COMPONENT server)
install(FILES deploy/examples/sample.ldif deploy/examples/README.md
        DESTINATION ${_rg_share_rel}/examples COMPONENT server)
install(FILES man/rcptguardd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8
        COMPONENT server)
install(FILES completions/rcptguardd DESTINATION ${_rg_completion_rel}
        COMPONENT server)

# ---- cli: rcptguard, and the documentation ----
install(TARGETS rcptguard RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT cli)
install(FILES man/rcptguard.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
        COMPONENT cli)
install(FILES completions/rcptguard DESTINATION ${_rg_completion_rel}
        COMPONENT cli)
file(GLOB _rg_docs ${CMAKE_SOURCE_DIR}/docs/*.md)
# STATUS.md is the developers' hand-over notes, not operator documentation.
list(FILTER _rg_docs EXCLUDE REGEX "/STATUS\\.md$")
install(FILES README.md ${_rg_docs} proto/rcptguard/v1/config.proto
        DESTINATION ${_rg_doc_rel} COMPONENT cli)
install(FILES deploy/examples/rcptguard.textproto
        DESTINATION ${_rg_doc_rel}/examples COMPONENT cli)

# ---- postfix: rcptguard-postfix ----
install(TARGETS rcptguard-postfix RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT postfix)
install(FILES deploy/systemd/rcptguard-postfix.service
        DESTINATION ${_rg_unit_rel} COMPONENT postfix)
install(FILES deploy/systemd/rcptguard-postfix.sysusers.conf
        DESTINATION ${_rg_sysusers_rel} RENAME rcptguard-postfix.conf
        COMPONENT postfix)
install(FILES deploy/debian/postfix.conf DESTINATION ${_rg_etc}
        COMPONENT postfix)
install(FILES man/rcptguard-postfix.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8
        COMPONENT postfix)
install(FILES completions/rcptguard-postfix DESTINATION ${_rg_completion_rel}
        COMPONENT postfix)

# ---- Debian maintainer scripts and conffiles ----
set(RG_SYSUSERS_DIR "${_rg_pkg_prefix}/${_rg_sysusers_rel}")
set(RG_TMPFILES_DIR "${_rg_pkg_prefix}/${_rg_tmpfiles_rel}")
set(_rg_debian_dir ${CMAKE_BINARY_DIR}/debian)
foreach(component server postfix)
  foreach(script postinst prerm postrm)
    configure_file(deploy/debian/${component}.${script}.in
                   ${_rg_debian_dir}/${component}/${script} @ONLY)
  endforeach()
endforeach()
file(WRITE ${_rg_debian_dir}/server/conffiles "${_rg_etc}/rcptguard.textproto\n")
file(WRITE ${_rg_debian_dir}/postfix/conffiles "${_rg_etc}/postfix.conf\n")

# ---- CPack ----
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME rcptguard)
set(CPACK_PACKAGE_VENDOR "rcptguard")
set(CPACK_PACKAGE_CONTACT "rcptguard maintainers <rcptguard@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${_rg_pkg_prefix})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server cli postfix)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/rcptguard/rcptguard")

set(CPACK_COMPONENT_SERVER_DEPENDS cli)
set(CPACK_DEBIAN_SERVER_PACKAGE_NAME rcptguardd)
set(CPACK_DEBIAN_SERVER_PACKAGE_RECOMMENDS "systemd")
set(CPACK_COMPONENT_SERVER_DESCRIPTION
    "recipient validation server for mail edges
rcptguardd answers edge MTAs, at RCPT TO time, whether recipients exist
(from Active Directory or OpenLDAP exports held as keyed fingerprints) and
whether the client is harvesting addresses.")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    "${_rg_debian_dir}/server/postinst;${_rg_debian_dir}/server/prerm;${_rg_debian_dir}/server/postrm;${_rg_debian_dir}/server/conffiles")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME rcptguard)
set(CPACK_COMPONENT_CLI_DESCRIPTION
    "command-line client and snapshot tools for rcptguard
rcptguard checks recipients against rcptguardd, shows its status and
harvest offenders, and builds, verifies and inspects directory snapshots
from LDIF files or a live LDAP export.")

set(CPACK_DEBIAN_POSTFIX_PACKAGE_NAME rcptguard-postfix)
set(CPACK_DEBIAN_POSTFIX_PACKAGE_ENHANCES "postfix")
# The documentation its unit and man page point to.
set(CPACK_DEBIAN_POSTFIX_PACKAGE_RECOMMENDS "rcptguard")
set(CPACK_COMPONENT_POSTFIX_DESCRIPTION
    "Postfix policy and socketmap adapter for rcptguard
rcptguard-postfix serves Postfix's policy delegation protocol
(check_policy_service) and socketmap tables, asking rcptguardd over gRPC.")
set(CPACK_DEBIAN_POSTFIX_PACKAGE_CONTROL_EXTRA
    "${_rg_debian_dir}/postfix/postinst;${_rg_debian_dir}/postfix/prerm;${_rg_debian_dir}/postfix/postrm;${_rg_debian_dir}/postfix/conffiles")

include(CPack)
