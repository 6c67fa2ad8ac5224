# add_bpf_skeleton(<family>): bpf/<family>.bpf.c -> <family>.bpf.o -> <family>.skel.h,
# exposed as the INTERFACE target `<family>_skel` (include dir = generated skeletons).
find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

set(BPF_SKEL_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${BPF_SKEL_DIR})

function(add_bpf_skeleton family)
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/${family}.bpf.c)
  set(obj ${BPF_SKEL_DIR}/${family}.bpf.o)
  set(skel ${BPF_SKEL_DIR}/${family}.skel.h)
  file(GLOB bpf_headers CONFIGURE_DEPENDS
       ${CMAKE_CURRENT_SOURCE_DIR}/*.h ${CMAKE_CURRENT_SOURCE_DIR}/include/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror
            -I${CMAKE_CURRENT_SOURCE_DIR}/include -I${CMAKE_CURRENT_SOURCE_DIR}
            -c ${src} -o ${obj}
    DEPENDS ${src} ${bpf_headers}
    COMMENT "BPF ${family}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${family}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${family}.skel.h"
    VERBATIM)
  add_custom_target(${family}_skel_gen DEPENDS ${skel})
  add_library(${family}_skel INTERFACE)
  add_dependencies(${family}_skel ${family}_skel_gen)
  target_include_directories(${family}_skel INTERFACE ${BPF_SKEL_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${family}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
